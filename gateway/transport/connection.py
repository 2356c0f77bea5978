"""
One client connection: WebSocket messages in, STOMP frames acted upon, bytes out.

The read loop feeds the sans-I/O :class:`protocol.ServerSession` and carries
out each frame: the application's part through its
:class:`~gateway.transport.handlers.Handlers`, subscriptions and acks by the
rules of the session's :class:`protocol.Subscriptions`, kept in step with the
gateway's subscription index.
RECEIPTs leave in the frames' order (:mod:`gateway.transport.receipts`);
everything going out is queued without waiting (:mod:`gateway.transport.outbound`).

This module holds the lifecycle, the read loop and dispatch; the rest of a
connection comes from mixins over its slots, one module each:
:mod:`~gateway.transport.subscribing` (SUBSCRIBE, UNSUBSCRIBE, acks, MESSAGEs),
:mod:`~gateway.transport.beating` (its heart-beats),
:mod:`~gateway.transport.pacing` (the SEND rate, back-pressure),
:mod:`~gateway.transport.closing` (ERROR, close, the end's bookkeeping) and
:class:`~gateway.transport.receipts.Answering` (RECEIPT or refusal).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from protocol import (
    Command,
    Frame,
    Headers,
    HeartBeatMonitor,
    InvalidFrame,
    ProtocolError,
    Refused,
    ServerSession,
    State,
)

from . import disconnects
from .beating import HeartBeating
from .closing import Closing
from .framing import Framing, FramingError, Kind
from .handlers import Action, SessionLog, at_once
from .outbound import Outbound
from .pacing import Pacing
from .peers import remote_address
from .receipts import Answering, Receipts
from .shared import Shared
from .subscribing import SubscriptionDispatch
from .websocket import close_outcome

__all__ = ["SERVER_NAME", "StompConnection"]

logger = logging.getLogger(__name__)

SERVER_NAME = "stomp-gateway/0.1.0"
# Frames handled before the reader lets the loop write them out (and serve
# others): a burst from one client reaches subscribers in coalesced steps.
FRAMES_PER_TURN = 8


class StompConnection(Answering, Closing, Pacing, SubscriptionDispatch, HeartBeating):
    """
    The server side of one STOMP over WebSocket connection.

    Args:
        websocket: The accepted WebSocket.
        framing: How STOMP travels in WebSocket messages (raw or SockJS).
        shared: What every connection of the gateway shares.

    """

    __slots__ = (
        "_closed_by",
        "_frames_this_turn",
        "_going_away",
        "_handlers",
        "_holding",
        "_loop",
        "_metrics",
        "_monitor",
        "_outbound",
        "_reading",
        "_receipt_headers",
        "_receipts",
        "_released",
        "_sends",
        "_shared",
        "_timer",
        "framing",
        "id",
        "remote",
        "session",
        "websocket",
    )

    def __init__(self, websocket: ServerConnection, framing: Framing, shared: Shared) -> None:
        self.websocket = websocket
        self.framing = framing
        self.id = secrets.token_hex(8)
        self.remote = remote_address(websocket)
        self.session = ServerSession(
            shared.limits, shared.heart_beat_policy, subscriptions=shared.subscription_policy
        )
        self._shared = shared
        self._metrics = shared.metrics
        self._loop = asyncio.get_running_loop()
        self._outbound = Outbound(
            websocket,
            framing,
            shared.flusher,
            shared.settings,
            slow=self._slow_consumer,
        )
        self._receipts: Receipts | None = None  # frames awaiting the bus, see _handle
        self._frames_this_turn = 0
        self._closed_by = "gateway"
        self._monitor: HeartBeatMonitor | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._released: int | None = None  # subscriptions removed at the end
        self._receipt_headers: Headers = ()  # extra headers for the next RECEIPT
        # Held while a WebSocket message is handled; after going_away() nothing more is.
        self._reading = asyncio.Lock()
        self._going_away = False
        self._holding = False  # the client's socket is left unread, see _unread
        self._sends = shared.send_budget(self._loop.time())
        self._handlers = shared.handlers(self)

    @property
    def version(self) -> str:
        return self.session.version

    @property
    def log(self) -> SessionLog:
        """The session's log (made when used: most sessions log a few lines)."""
        return SessionLog(logger, {"session": self.id, "remote": self.remote})

    def receipt_headers(self, headers: Headers) -> None:
        """Add ``headers`` to the RECEIPT of the frame being handled."""
        self._receipt_headers += headers

    # Lifecycle.

    async def run(self) -> None:
        """Serve the connection until it closes, then clean up."""
        self.log.event(
            logging.INFO,
            "opened",
            "opened remote=%s subprotocol=%s",
            self.remote,
            self.websocket.subprotocol,
        )
        for message in self.framing.opening():
            await self.websocket.send(message)
        self._timer = self._loop.call_later(self._shared.settings.connect_timeout, self._no_connect)
        try:
            await self._read_loop()
        except ConnectionClosed:
            pass
        except Exception:
            self.log.exception("failed remote=%s", self.remote, extra={"event": "failed"})
            error = ProtocolError("internal error", details="the server failed; see its log")
            self.fail(error, disconnects.internal_error)
        finally:
            self.close(*close_outcome(self.websocket))
            await self._finish()

    # Reading.

    async def going_away(self, reason: str) -> None:
        """
        Stop handling frames, let the SENDs awaiting the bus finish (their
        RECEIPTs go out first), then send ERROR and close with 1001.

        Frames arriving after this, and those of the message being handled
        that were not reached yet (a throttled client's), are dropped
        unanswered: without a RECEIPT the client knows they were not taken.
        """
        self._going_away = True
        async with self._reading:  # the message being handled, if any, completes
            pass
        if self._receipts is not None:
            await self._receipts.settled()
        self.fail(InvalidFrame(reason), disconnects.going_away)

    async def _read_loop(self) -> None:
        async for message in self.websocket:
            if self._monitor is not None:
                self._monitor.received(self._loop.time())
            async with self._reading:
                if self._going_away:
                    continue
                try:
                    for data in self.framing.decode(message):
                        await self._receive(data)
                except FramingError as exc:
                    self.log.event(
                        logging.INFO,
                        "framing error",
                        "closed remote=%s: %s",
                        self.remote,
                        exc,
                        reason=str(exc),
                    )
                    self.close(disconnects.protocol_error(str(exc)))
                except ProtocolError as exc:
                    self.fail(exc)
            if self._outbound.closing is not None:
                return

    async def _receive(self, data: bytes) -> None:
        for frame, effects in self.session.receive_data(data):
            await self._handle(frame, effects)
            if self.session.state is State.CLOSED or self._going_away:
                return  # the rest is dropped unanswered, see going_away
            self._frames_this_turn += 1
            if self._frames_this_turn >= FRAMES_PER_TURN:
                # Let the loop write out what these frames queued, and serve others.
                self._frames_this_turn = 0
                await asyncio.sleep(0)

    async def _handle(self, frame: Frame, effects: list[Frame]) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            self.log.debug("<<< %s %s", frame.command.value, self._loggable(frame))
        self._metrics.frames_received[frame.command] += 1
        pending: list[Awaitable[None]] = []
        refused = None
        if self._shared.settings.send_rate_policy == "throttle" and frame.command is Command.SEND:
            await self._throttle()
            if self._outbound.closing is not None:
                return  # closed meanwhile (heart-beat, slow consumer): nothing more is done
        try:
            self._charge(effects)
            # Check every effect before any takes place: a COMMIT whose held
            # frames include a bad one is refused as a whole.
            actions = [self._prepare(effect) for effect in effects]
            for effect in effects:
                await self._handlers.authorize(effect)
            for action in actions:
                if (done := await action()) is not None:
                    pending.append(done)
        except Refused as exc:  # the application's (Refusal) or the session's
            refused = exc.reason
        except ProtocolError as exc:
            if exc.receipt_id is None:
                exc.receipt_id = frame.get("receipt")
            raise
        extra, self._receipt_headers = self._receipt_headers, ()
        # Publishing is pipelined: the next frames are read while the bus
        # acknowledges, and RECEIPTs (or refusals) follow in the frames' order.
        receipts = self._receipts
        if not pending and (receipts is None or not receipts.waiting):
            self._finish_frame(frame, extra, refused)
            return
        if receipts is None:  # made on the first frame that waits: idle sessions need none
            receipts = self._receipts = Receipts(self._finish_frame)
        backlog = receipts.add(frame, extra, pending, refused)
        if backlog is not None:
            await self._unread(asyncio.wait({backlog}))  # back-pressure on this client

    # Frames.

    def _prepare(self, frame: Frame) -> Action:
        """
        Check ``frame`` and return what carries out its effect.

        Raises:
            Refused: The application (a Refusal) or the session (over its
                subscription cap) refuses the frame.
            ProtocolError: The frame breaks the protocol.

        """
        match frame.command:
            case Command.CONNECT | Command.STOMP:
                self._handlers.on_connect(frame)
                return at_once(self._connected)
            case Command.SEND:
                return self._handlers.on_send(frame)
            case Command.SUBSCRIBE:
                return self._prepare_subscribe(frame)
            case Command.UNSUBSCRIBE:
                return at_once(self._on_unsubscribe, frame)
            case Command.ACK | Command.NACK:
                return self._prepare_ack(frame)
            case Command.BEGIN | Command.COMMIT | Command.ABORT | Command.DISCONNECT:
                return _nothing  # the session holds transactions; nothing else to do
            case _:  # pragma: no cover - the session refuses server frames
                raise AssertionError(frame.command)

    def _connected(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._send(self.session.connected_frame(session=self.id, server=SERVER_NAME))
        self._start_heart_beats()
        send_ms, receive_ms = self.session.heart_beat
        self.log.event(
            logging.INFO,
            "connected",
            "connected remote=%s version=%s heart-beat=%d,%d",
            self.remote,
            self.version,
            send_ms,
            receive_ms,
        )
        self._handlers.on_connected()

    # Writing.

    def _send(self, frame: Frame) -> None:
        if self.session.error_sent is not None:
            return  # STOMP 1.2 §ERROR: the connection closes after an ERROR; nothing follows
        if logger.isEnabledFor(logging.DEBUG):
            self.log.debug(">>> %s %s", frame.command.value, frame.headers)
        self._metrics.frames_sent[frame.command] += 1
        self._outbound.enqueue(self.session.send(frame), Kind.TEXT)

    def _loggable(self, frame: Frame) -> Headers:
        """The headers of ``frame`` with credentials masked: tokens are never logged."""
        redacted = self._shared.redacted
        return tuple((k, "***" if k in redacted else v) for k, v in frame.headers)


async def _nothing() -> None:
    return None
