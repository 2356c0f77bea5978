"""
A whole session, driven by hypothesis's state machine against a model.

Each rule sends one frame (well-formed or not, split at random points) to a
:class:`protocol.ServerSession`; the model predicts whether it is accepted and
which effects it yields (transactions held until COMMIT, dropped on ABORT), or
which documented error closes the session. The CI run is bounded; ``fuzz/session.py``
runs the same machine for as long as it is given.
"""

from __future__ import annotations

import itertools

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from protocol import Command, Frame, Limits, ProtocolError, ServerSession, State, error_frame

TRANSACTIONS = st.sampled_from(["t1", "t2"])
MAX_HELD = 4


def encode(command: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    head = command + "\n" + "".join(f"{k}:{v}\n" for k, v in headers) + "\n"
    return head.encode() + body + b"\0"


class SessionMachine(RuleBasedStateMachine):
    """The model: state, open transactions and what each holds."""

    def __init__(self) -> None:
        super().__init__()
        self.new_connection()

    @precondition(lambda self: self.state is State.CLOSED)
    @rule()
    def new_connection(self) -> None:
        """A closed session takes nothing more: the client connects anew."""
        self.session = ServerSession(
            Limits(max_frame_size=512, max_headers=8, max_header_line=128),
            max_transaction_frames=MAX_HELD,
        )
        self.state = State.CONNECTING
        self.held: dict[str, list[bytes]] = {}

    def feed(self, data: bytes, cuts: list[int]) -> tuple[list[tuple[Frame, list[Frame]]], str]:
        """Feed ``data`` in pieces; return the frames yielded and the error message, if any."""
        yielded: list[tuple[Frame, list[Frame]]] = []
        points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
        try:
            for start, end in itertools.pairwise(points):
                yielded.extend(self.session.receive_data(data[start:end]))
        except ProtocolError as exc:
            error_frame(exc)  # every error can be told to the client
            self.state = State.CLOSED
            self.held.clear()
            return yielded, exc.message
        return yielded, ""

    def expect_error(self, data: bytes, cuts: list[int], message: str) -> None:
        _, error = self.feed(data, cuts)
        assert error == message

    @precondition(lambda self: self.state is State.CONNECTING)
    @rule(version=st.sampled_from(["1.0", "1.1", "1.2", "1.1,1.2"]), cuts=st.lists(st.integers()))
    def connect(self, version: str, cuts: list[int]) -> None:
        yielded, error = self.feed(encode("CONNECT", [("accept-version", version)]), cuts)
        assert error == ""
        assert [f.command for f, _ in yielded] == [Command.CONNECT]
        self.state = State.CONNECTED

    @precondition(lambda self: self.state is not State.CLOSED)
    @rule(cuts=st.lists(st.integers()), tx=st.none() | TRANSACTIONS, n=st.integers(0, 99))
    def send(self, cuts: list[int], tx: str | None, n: int) -> None:
        headers = [("destination", "/q"), ("n", str(n))]
        if tx is not None:
            headers.append(("transaction", tx))
        data = encode("SEND", headers, b"body")
        if self.state is State.CONNECTING:
            return self.expect_error(data, cuts, "not connected")
        if tx is not None and tx not in self.held:
            return self.expect_error(data, cuts, "unknown transaction")
        if tx is not None and sum(map(len, self.held.values())) >= MAX_HELD:
            return self.expect_error(data, cuts, "transaction too large")
        yielded, error = self.feed(data, cuts)
        assert error == ""
        ((frame, effects),) = yielded
        if tx is None:
            assert effects == [frame]
        else:
            assert effects == []
            self.held[tx].append(str(n).encode())
        return None

    @precondition(lambda self: self.state is State.CONNECTED)
    @rule(tx=TRANSACTIONS, cuts=st.lists(st.integers()))
    def begin(self, tx: str, cuts: list[int]) -> None:
        data = encode("BEGIN", [("transaction", tx)])
        if tx in self.held:
            return self.expect_error(data, cuts, "transaction already begun")
        yielded, error = self.feed(data, cuts)
        assert (error, len(yielded)) == ("", 1)
        self.held[tx] = []
        return None

    @precondition(lambda self: self.state is State.CONNECTED)
    @rule(tx=TRANSACTIONS, commit=st.booleans(), cuts=st.lists(st.integers()))
    def end(self, tx: str, commit: bool, cuts: list[int]) -> None:
        data = encode("COMMIT" if commit else "ABORT", [("transaction", tx)])
        if tx not in self.held:
            return self.expect_error(data, cuts, "unknown transaction")
        ((frame, effects),), error = self.feed(data, cuts)
        assert error == ""
        held = self.held.pop(tx)
        if commit:
            assert [e.get("n", "").encode() for e in effects[:-1]] == held
            assert effects[-1] is frame
        else:
            assert effects == [frame]
        return None

    @precondition(lambda self: self.state is State.CONNECTED)
    @rule(has_id=st.booleans(), cuts=st.lists(st.integers()))
    def subscribe(self, has_id: bool, cuts: list[int]) -> None:
        headers = [("destination", "/q")] + ([("id", "s")] if has_id else [])
        data = encode("SUBSCRIBE", headers)
        if not has_id and self.session.version != "1.0":
            return self.expect_error(data, cuts, "missing header")
        yielded, error = self.feed(data, cuts)
        assert (error, len(yielded)) == ("", 1)
        return None

    @precondition(lambda self: self.state is not State.CLOSED)
    @rule(
        data=st.sampled_from(
            [
                (b"FOO\n\n\0", "unknown command"),
                (b"SEND\nno-colon\n\n\0", "malformed header"),
                (b"SEND\ncontent-length:x\n\n\0", "invalid content-length"),
                (b"SEND\n" + b"h:v\n" * 9 + b"\n\0", "too many headers"),
                (b"SEND\nh:" + b"v" * 200 + b"\n\n\0", "header line too long"),
                (b"SEND\n\n" + b"x" * 600 + b"\0", "frame too large"),
                (b"MESSAGE\n\n\0", None),
            ]
        ),
        cuts=st.lists(st.integers()),
    )
    def broken(self, data: tuple[bytes, str | None], cuts: list[int]) -> None:
        raw, message = data
        if message is None:  # a server frame: refused by the state machine
            message = "not connected" if self.state is State.CONNECTING else "unexpected frame"
        self.expect_error(raw, cuts, message)

    @precondition(lambda self: self.state is State.CONNECTED)
    @rule()
    def disconnect(self) -> None:
        yielded, error = self.feed(encode("DISCONNECT", []), [])
        assert (error, len(yielded)) == ("", 1)
        self.state = State.CLOSED
        self.held.clear()

    @precondition(lambda self: self.state is State.CONNECTED)
    @rule(cuts=st.lists(st.integers()))
    def heart_beats(self, cuts: list[int]) -> None:
        yielded, error = self.feed(b"\n\r\n\n", cuts)
        assert (yielded, error) == ([], "")

    @invariant()
    def state_matches(self) -> None:
        assert self.session.state is self.state
        if self.state is not State.CLOSED:
            assert self.session.parser.buffered == 0  # every rule sends whole frames


SessionMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, database=None
)
TestSession = SessionMachine.TestCase
