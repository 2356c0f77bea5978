"""
The server side of a STOMP session, without I/O.

:class:`ServerSession` parses bytes, checks every client frame against the
state machine and the headers its command requires, negotiates version and
heart-beats on CONNECT, and holds transactions until COMMIT. For each frame
received it hands back the frames whose effects the caller must now carry out;
the session's :class:`~protocol.subscriptions.Subscriptions` keeps the rules
for SUBSCRIBE, UNSUBSCRIBE, ACK and NACK. :meth:`ServerSession.send` and
:meth:`ServerSession.fail` turn server frames into bytes and update the state:
after ERROR nothing more is sent.

"""

from __future__ import annotations

import enum
from collections.abc import Iterator

from .errors import InvalidFrame, LimitExceeded, LocalProtocolError, ProtocolError
from .escaping import encodable
from .frames import SERVER_COMMANDS, Command, Frame, Headers
from .negotiation import HeartBeatPolicy, negotiate_heart_beat, negotiate_version, parse_heart_beat
from .parser import Limits, Parser
from .serializer import serialize
from .subscriptions import SubscriptionPolicy, Subscriptions

__all__ = [
    "ACK_MODES",
    "TRANSITIONS",
    "ServerSession",
    "State",
    "error_frame",
    "receipt_for",
    "receipt_frame",
]


class State(enum.IntEnum):
    """Where a session stands."""

    CONNECTING = 0  # waiting for CONNECT or STOMP
    CONNECTED = 1
    CLOSED = 2  # after DISCONNECT or a protocol error


_IN_SESSION = (
    Command.SEND,
    Command.SUBSCRIBE,
    Command.UNSUBSCRIBE,
    Command.ACK,
    Command.NACK,
    Command.BEGIN,
    Command.COMMIT,
    Command.ABORT,
)

# Every legal transition: state -> client command -> next state.
TRANSITIONS: dict[State, dict[Command, State]] = {
    State.CONNECTING: {Command.CONNECT: State.CONNECTED, Command.STOMP: State.CONNECTED},
    State.CONNECTED: {
        **dict.fromkeys(_IN_SESSION, State.CONNECTED),
        Command.DISCONNECT: State.CLOSED,
    },
    State.CLOSED: {},
}

# Headers each command requires, by version (STOMP 1.2 §Client Frames;
# STOMP 1.1 and 1.0 for the older ACK and SUBSCRIBE forms).
_REQUIRED: dict[Command, dict[str, tuple[str, ...]]] = {
    Command.SEND: dict.fromkeys(("1.0", "1.1", "1.2"), ("destination",)),
    Command.SUBSCRIBE: {
        "1.0": ("destination",),
        "1.1": ("destination", "id"),
        "1.2": ("destination", "id"),
    },
    Command.UNSUBSCRIBE: {"1.1": ("id",), "1.2": ("id",)},
    Command.ACK: {"1.0": ("message-id",), "1.1": ("message-id", "subscription"), "1.2": ("id",)},
    Command.NACK: {"1.1": ("message-id", "subscription"), "1.2": ("id",)},
    Command.BEGIN: dict.fromkeys(("1.0", "1.1", "1.2"), ("transaction",)),
    Command.COMMIT: dict.fromkeys(("1.0", "1.1", "1.2"), ("transaction",)),
    Command.ABORT: dict.fromkeys(("1.0", "1.1", "1.2"), ("transaction",)),
}

ACK_MODES = {
    "1.0": frozenset({"auto", "client"}),
    "1.1": frozenset({"auto", "client", "client-individual"}),
    "1.2": frozenset({"auto", "client", "client-individual"}),
}

DEFAULT_LIMITS = Limits()
DEFAULT_POLICY = HeartBeatPolicy()
_TRANSACTIONAL = frozenset({Command.SEND, Command.ACK, Command.NACK})


class ServerSession:
    """
    One client's STOMP session, as seen by the server.

    Args:
        limits: Bounds on what the client may send.
        heart_beat: The server's heart-beat policy.
        max_transaction_frames: Frames held in all transactions at once.
        subscriptions: The rules for the session's subscriptions.

    Attributes:
        state: The session's :class:`State`.
        version: The negotiated version ("1.0" until CONNECT).
        heart_beat: Negotiated ``(send_ms, receive_ms)`` for the server.
        subscriptions: The live subscriptions and pending acknowledgements.
        error_sent: The ERROR frame sent, once it was: nothing may follow it.

    """

    def __init__(
        self,
        limits: Limits = DEFAULT_LIMITS,
        heart_beat: HeartBeatPolicy = DEFAULT_POLICY,
        max_transaction_frames: int = 1024,
        *,
        subscriptions: SubscriptionPolicy | None = None,
    ) -> None:
        self.parser = Parser(limits)
        self.policy = heart_beat
        self.max_transaction_frames = max_transaction_frames
        self.state = State.CONNECTING
        self.version = "1.0"
        self.heart_beat = (0, 0)
        self.subscriptions = Subscriptions(self.version, subscriptions)
        self.error_sent: Frame | None = None
        self._offer = (0, 0)
        self._transactions: dict[str, list[Frame]] = {}
        self._bytes_before_connect = 0

    def receive_data(self, data: bytes) -> Iterator[tuple[Frame, list[Frame]]]:
        """
        Parse ``data`` and yield each frame with the frames to act upon.

        Raises:
            ProtocolError: The client broke the protocol; the session is then
                :attr:`State.CLOSED` and the caller sends :meth:`fail`.

        """
        try:
            self._count_before_connect(data)
            for event in self.parser.feed(data):
                if isinstance(event, Frame):
                    yield event, self.receive(event)
        except ProtocolError:
            self.close()
            raise

    def receive(self, frame: Frame) -> list[Frame]:
        """
        Check ``frame`` and advance the state machine.

        Returns:
            The frames whose effects are due now: ``[frame]`` in general,
            nothing for a frame held in a transaction, and the held frames
            followed by the COMMIT on commit.

        Raises:
            ProtocolError: With ``receipt_id`` taken from ``frame``.

        """
        try:
            next_state = self._transition(frame.command)
            self._check_receipt(frame)
            self._check_headers(frame)
            effects = self._act(frame)
        except ProtocolError as exc:
            if exc.receipt_id is None:
                exc.receipt_id = self._echoable_receipt(frame)
            raise
        self.state = next_state
        return effects

    def _count_before_connect(self, data: bytes) -> None:
        """Bound what a client that is not connected makes the server hold and parse."""
        if self.state is not State.CONNECTING:
            return
        limit = self.parser.limits.max_bytes_before_connect
        self._bytes_before_connect += len(data)
        if self._bytes_before_connect > limit:
            raise LimitExceeded("too much data before CONNECT", details=f"at most {limit} bytes")

    def _echoable_receipt(self, frame: Frame) -> str | None:
        receipt = frame.get("receipt")
        if receipt is None or not encodable(receipt, Command.ERROR, self.version):
            return None
        return receipt

    def _check_receipt(self, frame: Frame) -> None:
        receipt = frame.get("receipt")
        if receipt is not None and self._echoable_receipt(frame) is None:
            raise InvalidFrame(
                "invalid receipt header",
                details=f"receipt {receipt!r} cannot be sent back in STOMP {self.version}",
            )

    def _transition(self, command: Command) -> State:
        next_state = TRANSITIONS[self.state].get(command)
        if next_state is not None:
            return next_state
        if self.state is State.CONNECTING:
            details = f"expected CONNECT or STOMP, not {command.value}"
            raise InvalidFrame("not connected", details=details)
        if self.state is State.CLOSED:
            raise InvalidFrame("session closed", details=f"{command.value} after DISCONNECT")
        if command in (Command.CONNECT, Command.STOMP):
            raise InvalidFrame("already connected", details=f"unexpected {command.value}")
        raise InvalidFrame("unexpected frame", details=f"{command.value} is a server frame")

    def _check_headers(self, frame: Frame) -> None:
        version = self.version
        required = _REQUIRED.get(frame.command, {})
        if frame.command is Command.NACK and version == "1.0":
            raise InvalidFrame("unexpected frame", details="NACK does not exist in STOMP 1.0")
        if (
            frame.command is Command.UNSUBSCRIBE
            and version == "1.0"
            and "id" not in frame
            and "destination" not in frame
        ):
            raise InvalidFrame("missing header", details="UNSUBSCRIBE requires id or destination")
        for name in required.get(version, ()):
            if name not in frame:
                raise InvalidFrame(
                    "missing header", details=f"{frame.command.value} requires {name}"
                )
        if frame.command is Command.SUBSCRIBE:
            mode = frame.get("ack", "auto")
            if mode not in ACK_MODES[version]:
                raise InvalidFrame("invalid ack mode", details=f"unknown ack mode {mode!r}")
            self.subscriptions.check_id(frame)

    def _act(self, frame: Frame) -> list[Frame]:
        command = frame.command
        if command in (Command.CONNECT, Command.STOMP):
            self._connect(frame)
        elif command is Command.DISCONNECT:
            self._transactions.clear()
        elif command is Command.BEGIN:
            return self._begin(frame)
        elif command in (Command.COMMIT, Command.ABORT):
            held = self._end_transaction(frame)
            return [*held, frame] if command is Command.COMMIT else [frame]
        elif command in _TRANSACTIONAL and "transaction" in frame:
            self._hold(frame)
            return []
        return [frame]

    def _connect(self, frame: Frame) -> None:
        version = negotiate_version(frame.get("accept-version"))
        client = parse_heart_beat(frame.get("heart-beat"))
        self.version = self.parser.version = self.subscriptions.version = version
        self.parser.trim_values = version == "1.0"
        self._offer = self.policy.offer(client)
        self.heart_beat = negotiate_heart_beat(client, self._offer)

    def _begin(self, frame: Frame) -> list[Frame]:
        name = frame.get("transaction", "")
        if name in self._transactions:
            raise InvalidFrame("transaction already begun", details=f"transaction {name!r}")
        self._transactions[name] = []
        return [frame]

    def _end_transaction(self, frame: Frame) -> list[Frame]:
        name = frame.get("transaction", "")
        try:
            return self._transactions.pop(name)
        except KeyError:
            raise InvalidFrame("unknown transaction", details=f"transaction {name!r}") from None

    def _hold(self, frame: Frame) -> None:
        name = frame.get("transaction", "")
        held = self._transactions.get(name)
        if held is None:
            raise InvalidFrame("unknown transaction", details=f"transaction {name!r}")
        if sum(map(len, self._transactions.values())) >= self.max_transaction_frames:
            raise LimitExceeded(
                "transaction too large",
                details=f"at most {self.max_transaction_frames} frames may wait for COMMIT",
            )
        held.append(frame)

    def close(self) -> None:
        """End the session; open transactions and subscriptions are discarded."""
        self.state = State.CLOSED
        self._transactions.clear()
        self.subscriptions.clear()

    def connected_frame(self, *, session: str, server: str) -> Frame:
        """Return the CONNECTED frame answering the CONNECT."""
        sx, sy = self._offer
        return Frame(
            Command.CONNECTED,
            (
                ("version", self.version),
                ("heart-beat", f"{sx},{sy}"),
                ("server", server),
                ("session", session),
            ),
        )

    def send(self, frame: Frame) -> bytes:
        """
        Return the bytes of the server frame ``frame`` in the negotiated version.

        An ERROR closes the session: STOMP 1.2 §ERROR says the server MUST
        then close the connection, so nothing may follow it.

        Raises:
            LocalProtocolError: ``frame`` is a client frame, follows an ERROR,
                or cannot be encoded (see :func:`~protocol.serialize`).

        """
        if frame.command not in SERVER_COMMANDS:
            raise LocalProtocolError(f"{frame.command.value} is a client frame")
        if self.error_sent is not None:
            raise LocalProtocolError(f"{frame.command.value} after ERROR")
        data = serialize(frame, self.version)
        if frame.command is Command.ERROR:
            self.close()
            self.error_sent = frame
        return data

    def fail(self, error: ProtocolError) -> bytes:
        """
        Return the bytes of the ERROR frame that reports ``error``; the
        session is then closed (see :meth:`send`).

        Raises:
            LocalProtocolError: An ERROR was sent already.

        """
        return self.send(error_frame(error))


def receipt_for(frame: Frame, headers: Headers = ()) -> Frame | None:
    """
    Return the RECEIPT that answers ``frame`` once its effect is done, with
    any extra headers: None when it asked for none, or it is a CONNECT or
    STOMP (STOMP 1.2 §Header receipt: any client frame other than CONNECT
    may ask for one; the CONNECTED frame answers a CONNECT).
    """
    receipt = frame.get("receipt")
    if receipt is None or frame.command in (Command.CONNECT, Command.STOMP):
        return None
    return receipt_frame(receipt, headers)


def receipt_frame(receipt_id: str, headers: Headers = ()) -> Frame:
    """Return the RECEIPT for a frame that carried ``receipt``, with any extra headers."""
    return Frame(Command.RECEIPT, (("receipt-id", receipt_id), *headers))


def error_frame(error: ProtocolError) -> Frame:
    """Return the ERROR frame that reports ``error`` (STOMP 1.2 §ERROR)."""
    headers = [("message", error.message)]
    if error.receipt_id is not None:
        headers.append(("receipt-id", error.receipt_id))
    headers.extend(error.headers)
    if "content-type" not in dict(headers):
        headers.append(("content-type", "text/plain"))
    return Frame(Command.ERROR, tuple(headers), error.details.encode())
