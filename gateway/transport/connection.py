"""
One client connection: WebSocket messages in, STOMP frames acted upon, bytes out.

Reading and writing are separate: the read loop feeds the sans-I/O
:class:`protocol.ServerSession` and carries out each frame; everything going
out is queued and written once per turn of the event loop (see
:mod:`gateway.transport.flusher`), by a task of its own only while the socket is
backed up, so a slow socket never stalls the fan-out to others.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from gateway.chat.recovery import NOT_RECOVERED, Recovery, recover
from gateway.chat.registry import Subscription
from gateway.chat.routing import ERRORS_DESTINATION, RoutingError
from gateway.chat.service import ApplicationError, new_object_id
from gateway.http.api import GatewayConnection
from gateway.security.auth import CREDENTIAL_HEADERS, AuthenticationError
from gateway.security.identity import Member
from gateway.security.limits import TokenBucket
from kafka_bridge import LogUnavailable, PublishError
from persistence import ChatMessage, LastConnect, StoreError
from protocol import (
    Command,
    Frame,
    Headers,
    HeartBeatMonitor,
    InvalidFrame,
    LimitExceeded,
    LocalProtocolError,
    MessageTemplate,
    ProtocolError,
    ServerSession,
    State,
    error_frame,
    message_head,
    receipt_frame,
)

from .framing import Framing, FramingError, Kind, Message, Outbound
from .websocket import at_rest, client_beat, write_server_beat

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["StompConnection"]

logger = logging.getLogger(__name__)

SERVER_NAME = "stomp-gateway/0.1.0"
# A SUBSCRIBE to a room may name the last message the client saw...
RECOVERY_HEADER = "x-last-message-id"
# ...and is told on its RECEIPT and first MESSAGE whether the gap was filled.
RECOVERED_HEADER = "x-recovered"
# SENDs awaiting the bus per connection before it stops reading that client.
MAX_IN_FLIGHT = 1000
# CONNECT headers whose values are never logged.
_REDACTED = frozenset(CREDENTIAL_HEADERS)
# Frames handled before the reader lets the loop write them out (and serve
# others): a burst from one client reaches subscribers in coalesced steps.
FRAMES_PER_TURN = 8


# A frame whose effect awaits the bus: frame, receipt, extra RECEIPT headers,
# what it awaits, the application error to report instead of the RECEIPT.
Awaiting = tuple[Frame, str | None, Headers, list[Awaitable[None]], str | None]


class StompConnection:
    """
    The server side of one STOMP over WebSocket connection.

    Args:
        websocket: The accepted WebSocket.
        gateway: Shared state: configuration, registry, chat service.
        framing: How STOMP travels in WebSocket messages (raw or SockJS).

    """

    __slots__ = (
        "_ack_ids",
        "_acks",
        "_awaiting",
        "_bytes_before_connect",
        "_close",
        "_closed_by",
        "_closer",
        "_completer",
        "_drain_timer",
        "_flush_due",
        "_frames_this_turn",
        "_going_away",
        "_holding",
        "_loop",
        "_low_water",
        "_metrics",
        "_monitor",
        "_outbound",
        "_outbound_bytes",
        "_reading",
        "_receipt_headers",
        "_released",
        "_sends",
        "_timer",
        "_writer",
        "framing",
        "gateway",
        "id",
        "member",
        "remote",
        "session",
        "websocket",
    )

    def __init__(self, websocket: ServerConnection, gateway: Gateway, framing: Framing) -> None:
        self.websocket = websocket
        self.gateway = gateway
        self.framing = framing
        self.id = secrets.token_hex(8)
        self.remote = _address(websocket)
        self.session = ServerSession(gateway.limits, gateway.heart_beat_policy)
        self._metrics = gateway.metrics
        self._loop = asyncio.get_running_loop()
        self._outbound: list[Outbound] = []
        self._outbound_bytes = 0
        self._flush_due = False  # handed to the gateway's flusher
        self._writer: asyncio.Task[None] | None = None  # while the socket is backed up, or closing
        self._frames_this_turn = 0
        self._close: tuple[int, str] | None = None
        self._closed_by = "gateway"
        self._acks: dict[str, Subscription] = {}
        self._ack_ids = itertools.count()
        self._monitor: HeartBeatMonitor | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closer: asyncio.Task[None] | None = None
        self._released: int | None = None  # subscriptions removed at the end
        self._receipt_headers: Headers = ()  # extra headers for the next RECEIPT
        # Frames awaiting the bus, in order; made on the first (idle sessions need none).
        self._awaiting: deque[Awaiting] | None = None
        self._completer: asyncio.Task[None] | None = None  # concludes them, while any
        # Held while a WebSocket message is handled; after going_away() nothing more is.
        self._reading = asyncio.Lock()
        self._going_away = False
        self._holding = False  # the gateway leaves the client's socket unread, see _unread
        self._bytes_before_connect = 0
        self._sends = TokenBucket(
            gateway.config.send_rate, gateway.config.send_burst, self._loop.time()
        )
        self._drain_timer: asyncio.TimerHandle | None = None  # see _enqueue
        self._low_water = min(gateway.config.outbound_low_water, gateway.config.max_outbound_bytes)
        # Set on CONNECT when the session is identified (token or header).
        self.member: Member | None = None

    @property
    def version(self) -> str:
        return self.session.version

    # Lifecycle.

    async def run(self) -> None:
        """Serve the connection until it closes, then clean up."""
        logger.info(
            "session %s opened remote=%s subprotocol=%s",
            self.id,
            self.remote,
            self.websocket.subprotocol,
            extra=self._fields("opened"),
        )
        for message in self.framing.opening():
            await self.websocket.send(message)
        self._timer = self._loop.call_later(self.gateway.config.connect_timeout, self._no_connect)
        try:
            await self._read_loop()
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception(
                "session %s failed remote=%s", self.id, self.remote, extra=self._fields("failed")
            )
            error = ProtocolError("internal error", details="the server failed; see its log")
            self.fail(error, CloseCode.INTERNAL_ERROR)
        finally:
            self.close(*self._websocket_close())
            await self._finish()

    def _websocket_close(self) -> tuple[int, str, str]:
        """
        The code and reason of a close the gateway did not ask for, and who
        started it (RFC 6455 §7.1.5): ``websockets`` itself (1009 message too
        big, 1007 invalid UTF-8, 1011 keepalive timeout) or the client.
        """
        protocol = self.websocket.protocol
        sent, received = protocol.close_sent, protocol.close_rcvd
        if sent is not None and (received is None or not protocol.close_rcvd_then_sent):
            return sent.code, sent.reason, "gateway"
        if received is not None:
            return received.code, received.reason or "client closed the connection", "client"
        return CloseCode.ABNORMAL_CLOSURE, "connection lost", "client"

    async def _finish(self) -> None:
        for timer in (self._timer, self._drain_timer):
            if timer is not None:
                timer.cancel()
        self.gateway.heart_beats.cancel(self)
        self._take_beats(None)
        self.session.close()
        self._release()
        self.flush()  # starts the writer that closes the WebSocket, unless it runs already
        writer = self._writer
        assert writer is not None
        try:
            await asyncio.wait_for(writer, self.gateway.config.shutdown_timeout)
        except (TimeoutError, ConnectionClosed):
            writer.cancel()
        code, reason = self._close or (CloseCode.NORMAL_CLOSURE, "")
        logger.info(
            "session %s closed remote=%s code=%d reason=%s closed_by=%s subscriptions_removed=%d",
            self.id,
            self.remote,
            code,
            reason,
            self._closed_by,
            self._released,
            extra=self._fields("closed", reason),
        )

    def close(self, code: int, reason: str, by: str = "gateway") -> None:
        """
        Write out what is queued, then close the WebSocket; ``by`` tells who
        started the close (``gateway`` or ``client``) for the log.

        Nothing more is delivered, and the session's subscriptions go as soon
        as the current fan-out (which may be iterating over them) is done.
        """
        if self._close is None:
            self._close = (code, reason)
            self._closed_by = by
            self._loop.call_soon(self._release)
            self._schedule_flush()

    def _release(self) -> None:
        if self._released is None:
            self._released = self.gateway.registry.remove_session(self)
            self._acks.clear()
            if self.member is not None:
                self.gateway.presence.closed(self)
                self._log_connection()

    def _fields(self, event: str, reason: str | None = None) -> dict[str, str]:
        """The structured fields of a session log line (see ``--log-format json``)."""
        fields = {"session": self.id, "remote": self.remote, "event": event}
        if reason is not None:
            fields["reason"] = reason
        return fields

    def fail(self, error: ProtocolError, code: int = CloseCode.PROTOCOL_ERROR) -> None:
        """Send ERROR, then close: STOMP 1.2 §ERROR says the server MUST close."""
        if self._close is not None:
            return
        self._metrics.error(error.message)
        logger.info(
            "session %s error remote=%s: %s",
            self.id,
            self.remote,
            error,
            extra=self._fields("error", error.message),
        )
        self.session.close()
        self._send(error_frame(error))
        self.close(code, error.message)

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
        while (completer := self._completer) is not None and not completer.done():
            await asyncio.wait({completer})
        self.fail(InvalidFrame(reason), CloseCode.GOING_AWAY)

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
                    logger.info(
                        "session %s closed remote=%s: %s",
                        self.id,
                        self.remote,
                        exc,
                        extra=self._fields("framing error", str(exc)),
                    )
                    self.close(CloseCode.PROTOCOL_ERROR, str(exc))
                except ProtocolError as exc:
                    self.fail(exc)
            if self._close is not None:
                return

    async def _receive(self, data: bytes) -> None:
        if self.session.state is State.CONNECTING:
            self._bytes_before_connect += len(data)
            limit = self.gateway.config.max_bytes_before_connect
            if self._bytes_before_connect > limit:
                raise LimitExceeded(
                    "too much data before CONNECT", details=f"at most {limit} bytes"
                )
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
            logger.debug("session %s <<< %s %s", self.id, frame.command.value, _loggable(frame))
        self._metrics.frames_received[frame.command] += 1
        receipt = frame.get("receipt")
        pending: list[Awaitable[None]] = []
        error = None
        if self.gateway.config.send_rate_policy == "throttle" and frame.command is Command.SEND:
            await self._throttle()
            if self._close is not None:
                return  # closed meanwhile (heart-beat, slow consumer): nothing more is done
        try:
            self._charge(effects)
            # Check every effect before any takes place: a COMMIT whose held
            # frames include a bad one is refused as a whole.
            actions = [self._prepare(effect) for effect in effects]
            for effect in effects:
                await self._authorize(effect)
            for action in actions:
                if (done := await action()) is not None:
                    pending.append(done)
        except ApplicationError as exc:
            error = exc.reason
        except ProtocolError as exc:
            if exc.receipt_id is None:
                exc.receipt_id = receipt
            raise
        extra, self._receipt_headers = self._receipt_headers, ()
        if not pending and not self._awaiting:
            if error is None:
                self._conclude(frame, receipt, extra)
            else:
                self._report(error, frame, receipt)
            return
        # Publishing is pipelined: the next frames are read while the bus
        # acknowledges, and RECEIPTs (or errors) follow in the frames' order.
        if self._awaiting is None:
            self._awaiting = deque()
        self._awaiting.append((frame, receipt, extra, pending, error))
        if self._completer is None:
            self._completer = asyncio.create_task(self._complete())
        if len(self._awaiting) > MAX_IN_FLIGHT:
            await self._unread(asyncio.wait({self._completer}))  # back-pressure on this client

    async def _complete(self) -> None:
        """
        Conclude the frames awaiting the bus, in order. One task for all: the
        frames a Kafka batch acknowledged are concluded in one loop turn, so
        their RECEIPTs leave together (a task per frame, each waiting for the
        previous, took a turn and a write per RECEIPT).
        """
        awaiting = self._awaiting
        assert awaiting is not None
        try:
            while awaiting:
                frame, receipt, extra, pending, error = awaiting.popleft()
                for done in pending:
                    try:
                        await done
                    except PublishError as exc:
                        error = error or f"message not sent: {exc}"
                if error is None:
                    self._conclude(frame, receipt, extra)
                else:
                    self._report(error, frame, receipt)
        finally:
            self._completer = None

    async def _throttle(self) -> None:
        """
        Charge a SEND, in a transaction or not, as it is read; over the rate,
        stop reading until the bucket is out of debt (back-pressure, as
        RabbitMQ's flow control): nothing is refused, the client slows down.
        A transaction's SENDs are paced as they come, so any COMMIT can succeed.
        """
        delay = self._sends.borrow(self._loop.time())
        if delay:
            self._metrics.throttled_seconds += delay
            await self._unread(asyncio.sleep(delay))

    def _charge(self, effects: list[Frame]) -> None:
        """
        With ``--send-rate-policy reject``, charge the SENDs about to take
        effect (a COMMIT's, together); refuse them all, spending nothing,
        when the bucket lacks tokens for them.

        Raises:
            ApplicationError: Over the rate.

        """
        config = self.gateway.config
        if config.send_rate_policy != "reject":
            return
        sends = sum(effect.command is Command.SEND for effect in effects)
        if sends > config.send_burst:
            raise ApplicationError(
                f"rate limit exceeded: the transaction holds {sends} SENDs, "
                f"more than --send-burst {config.send_burst}"
            )
        if sends and not self._sends.take(self._loop.time(), sends):
            raise ApplicationError(
                f"rate limit exceeded: at most {config.send_rate:g} SENDs per second"
            )

    async def _unread(self, waiting: Awaitable[object]) -> None:
        """
        Await ``waiting`` with the client's socket unread. Meanwhile what the
        client sent waits in the socket unseen, so its silence is not judged
        (STOMP 1.2 §Heart-beating counts any data received), and is timed
        afresh from when reading resumes.
        """
        self._holding = True
        try:
            await waiting
        finally:
            self._holding = False
            if self._monitor is not None:
                self._monitor.received(self._loop.time())

    def _conclude(self, frame: Frame, receipt: str | None, extra: Headers) -> None:
        """The frame's effect is done: RECEIPT it, and close after DISCONNECT."""
        if receipt is not None and frame.command not in (Command.CONNECT, Command.STOMP):
            # STOMP 1.2 §Header receipt: the RECEIPT follows the frame's effect.
            self._send(receipt_frame(receipt, extra))
        if frame.command is Command.DISCONNECT:
            self.close(CloseCode.NORMAL_CLOSURE, "client disconnected", by="client")

    def _prepare(self, frame: Frame) -> Action:
        """
        Check ``frame`` and return what carries out its effect.

        Raises:
            ApplicationError: The application refuses the frame.
            ProtocolError: The frame breaks the protocol.

        """
        match frame.command:
            case Command.CONNECT | Command.STOMP:
                self.member = self._authenticate(frame)
                return _now(self._connected, frame)
            case Command.SEND:
                return self._prepare_send(frame)
            case Command.SUBSCRIBE:
                return self._prepare_subscribe(frame)
            case Command.UNSUBSCRIBE:
                return _now(self._on_unsubscribe, frame)
            case Command.ACK | Command.NACK:
                return self._prepare_ack(frame)
            case Command.BEGIN | Command.COMMIT | Command.ABORT | Command.DISCONNECT:
                return _nothing  # the session holds transactions; nothing else to do
            case _:  # pragma: no cover - the session refuses server frames
                raise AssertionError(frame.command)

    def _report(self, reason: str, frame: Frame, receipt: str | None) -> None:
        """Tell the client about an application error, Spring's way (see README)."""
        self._metrics.error(reason)
        logger.info(
            "session %s rejected %s remote=%s: %s",
            self.id,
            frame.command.value,
            self.remote,
            reason,
            extra=self._fields("rejected", reason),
        )
        headers = [("message", reason)]
        if receipt is not None:
            headers.append(("receipt-id", receipt))
        self._tell(ERRORS_DESTINATION, reason, *headers)

    def _tell(self, destination: str, text: str, *headers: tuple[str, str]) -> None:
        """Send ``text`` to this session's own subscriptions to ``destination``."""
        template = MessageTemplate(
            (
                ("destination", destination),
                ("message-id", new_object_id()),
                *headers,
                ("content-type", "text/plain;charset=UTF-8"),
            ),
            text.encode(),
        )
        for subscription in self.gateway.registry.of(self, destination):
            self.deliver(subscription, template)

    # Frames.

    def _authenticate(self, frame: Frame) -> Member | None:
        """Return the member the CONNECT's token names (None without authentication)."""
        authenticator = self.gateway.authenticator
        if authenticator is None:
            return None
        try:
            # STOMP 1.2 §Repeated Header Entries: the first occurrence wins.
            return authenticator.authenticate(dict(reversed(frame.headers)))
        except AuthenticationError as exc:
            # STOMP 1.2 §ERROR: the server then MUST close the connection.
            raise InvalidFrame("authentication failed", details=str(exc)) from None

    async def _authorize(self, frame: Frame) -> None:
        """
        Refuse a SUBSCRIBE or chat SEND to a room the member may not use.

        Raises:
            ApplicationError: Room authorization denies it.

        """
        authorizer = self.gateway.authorizer
        if authorizer is None or self.member is None:
            return
        room_id = self._room_of(frame)
        if room_id is not None and not await authorizer.allowed(self.member, room_id):
            raise ApplicationError(f"not a member of room {room_id}")

    def _room_of(self, frame: Frame) -> int | None:
        router = self.gateway.router
        destination = frame.get("destination", "")
        if frame.command is Command.SUBSCRIBE:
            return router.room_of(destination)
        if frame.command is Command.SEND:
            route = router.route_send(destination)  # checked by _prepare already
            return route.room_id if route.kind == "chat" else None
        return None

    def _connected(self, frame: Frame) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.member is None:  # a token identifies the session before the header
            self.member = self._member_from_header(frame)
        send_ms, receive_ms = self.session.heart_beat
        tolerance = self.gateway.heart_beat_policy.tolerance
        keep_alive = send_ms or self.framing.idle_heartbeat_ms
        self._monitor = HeartBeatMonitor(keep_alive, receive_ms, tolerance, self._loop.time())
        if receive_ms and (keepalive := self.websocket.keepalive_task) is not None:
            # The client's heart-beats now tell when it is gone (STOMP 1.2
            # §Heart-beating): WebSocket pings would only add work and a task.
            keepalive.cancel()
            # Dropped too: a cancelled task keeps its exception, traceback and frames.
            self.websocket.keepalive_task = None
        self._send(self.session.connected_frame(session=self.id, server=SERVER_NAME))
        if (deadline := self._monitor.next_check()) is not None:
            self.gateway.heart_beats.schedule(self, deadline)
        if receive_ms and self.framing.bare_beats:
            self._take_beats(self._beat_received)
        logger.info(
            "session %s connected remote=%s version=%s heart-beat=%d,%d",
            self.id,
            self.remote,
            self.version,
            send_ms,
            receive_ms,
            extra=self._fields("connected"),
        )
        if self.member is not None:
            self._log_connection()

    def _member_from_header(self, frame: Frame) -> Member | None:
        """The member ``--member-header`` names, when set and sent."""
        name = self.gateway.config.member_header
        value = frame.get(name) if name else None
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()) or len(value) > 18:
            raise InvalidFrame("invalid member", details=f"{name} must be a member id (an integer)")
        return Member(int(value))

    def _log_connection(self) -> None:
        """Record this member's connect or disconnect, now (written behind)."""
        assert self.member is not None
        self.gateway.connection_log.record(LastConnect(self.member.id, self.id, time.time_ns()))

    def _prepare_send(self, frame: Frame) -> Action:
        destination = frame.get("destination", "")
        try:
            route = self.gateway.router.route_send(destination)
        except RoutingError as exc:
            raise ApplicationError(str(exc)) from None
        if route.kind == "chat":
            message = self.gateway.chat.compose(route.room_id, frame.body, self.member)
            return functools.partial(self._publish, message)
        if route.kind == "ping":
            return _now(self._tell, self.gateway.router.pong_destination, "pong")
        return _now(self._relay, frame, destination)

    async def _publish(self, message: ChatMessage) -> Awaitable[None] | None:
        try:
            return await self.gateway.chat.publish(message)
        except PublishError as exc:
            raise ApplicationError(f"message not sent: {exc}") from None

    def _relay(self, frame: Frame, destination: str) -> None:
        """Relay a SEND to a broker destination as-is (``--allow-broker-send``)."""
        skipped = ("receipt", "transaction", "content-length", "message-id", "subscription")
        headers = (("message-id", new_object_id()), *frame.without(*skipped).headers)
        template = MessageTemplate(headers, frame.body)
        for subscription in self.gateway.registry.subscribers(destination):
            subscription.session.deliver(subscription, template)

    def _prepare_subscribe(self, frame: Frame) -> Action:
        destination = frame.get("destination", "")
        # STOMP 1.0 subscriptions may omit the id; the destination stands in.
        subscription_id = frame.get("id", destination)
        registry = self.gateway.registry
        if registry.get(self, subscription_id) is not None:
            raise InvalidFrame(
                "duplicate subscription id",
                details=f"subscription {subscription_id!r} is already live in this session",
            )
        try:
            self.gateway.router.check_subscribe(destination)
        except RoutingError as exc:
            raise ApplicationError(str(exc)) from None
        policy = self.gateway.config.duplicate_subscriptions
        existing = registry.of(self, destination)
        if existing and policy == "reject":
            raise InvalidFrame(
                "duplicate subscription",
                details=f"already subscribed to {destination!r} as {existing[0].id!r}",
            )
        limit = self.gateway.config.max_subscriptions
        if registry.count(self) >= limit and not (existing and policy == "replace"):
            raise ApplicationError(f"too many subscriptions: at most {limit} per session")
        try:
            head = message_head(subscription_id, self.version)
        except LocalProtocolError:
            raise InvalidFrame(
                "invalid subscription id",
                details=f"{subscription_id!r} cannot be sent back in STOMP {self.version}",
            ) from None
        subscription = Subscription(
            session=self,
            id=subscription_id,
            destination=destination,
            ack_mode=frame.get("ack", "auto"),
            head=head,
        )
        replaced = existing if policy == "replace" else []
        last_id = frame.get(RECOVERY_HEADER)
        room_id = self.gateway.router.room_of(destination)
        if last_id is None or room_id is None:
            return _now(self._subscribe, subscription, replaced)
        return functools.partial(self._recover, subscription, replaced, room_id, last_id)

    def _subscribe(
        self, subscription: Subscription, replaced: list[Subscription]
    ) -> Awaitable[None] | None:
        """Register ``subscription``; return what its RECEIPT waits for (the bus, its room)."""
        for old in replaced:
            self._unsubscribe(old.id)
        live = self.gateway.registry.add(subscription)
        if self.member is not None:
            self.gateway.presence.subscribed(self, self.member.id, subscription.destination)
        return live

    async def _recover(
        self, subscription: Subscription, replaced: list[Subscription], room_id: int, last_id: str
    ) -> None:
        """Subscribe, send what the client missed after ``last_id``, then go live."""
        subscription.backlog = []  # live messages wait while the missed ones are read
        live = self._subscribe(subscription, replaced)
        if live is not None:
            await live  # the store is read once the bus reads the room
        recovery = await self._recovery(room_id, last_id)
        self._metrics.recovered(recovery.source, len(recovery.messages))
        flag = "true" if recovery.recovered else "false"
        subscription.note = f"{RECOVERED_HEADER}:{flag}\n".encode()
        self._receipt_headers = ((RECOVERED_HEADER, flag),)
        for message, raw in recovery.messages:
            self.deliver(subscription, self.gateway.chat.template(message, raw))
        subscription.floor = recovery.floor
        backlog, subscription.backlog = subscription.backlog or [], None
        for template, offset in backlog:
            if offset > subscription.floor:
                self.deliver(subscription, template)

    async def _recovery(self, room_id: int, last_id: str) -> Recovery:
        """What the client missed, or NOT_RECOVERED when it cannot be told whole in time."""
        gateway = self.gateway
        try:
            async with asyncio.timeout(gateway.config.recovery_timeout):
                return await recover(
                    gateway.store,
                    gateway.chat.recent,
                    gateway.bus,
                    gateway.persister.stored_before,
                    room_id,
                    last_id,
                )
        except (StoreError, LogUnavailable, TimeoutError) as exc:
            reason = "recovery timed out" if isinstance(exc, TimeoutError) else str(exc)
            logger.warning("session %s cannot recover room %d: %s", self.id, room_id, reason)
            return NOT_RECOVERED

    def _on_unsubscribe(self, frame: Frame) -> None:
        subscription_id = frame.get("id") or frame.get("destination", "")
        if self._unsubscribe(subscription_id) is None:
            # An id replaced by a later SUBSCRIBE to the same destination, or
            # never live: the client's wish (no such subscription) holds, and
            # the session keeps its other subscriptions; a RECEIPT follows.
            logger.debug("session %s unsubscribed unknown id %r", self.id, subscription_id)

    def _unsubscribe(self, subscription_id: str) -> Subscription | None:
        subscription = self.gateway.registry.remove(self, subscription_id)
        if subscription is not None:
            self.gateway.presence.unsubscribed(self, subscription.destination)
            for ack_id in subscription.pending:
                self._forget_ack(subscription, ack_id)
        return subscription

    def _forget_ack(self, subscription: Subscription, ack_id: str) -> None:
        # In STOMP 1.0 two subscriptions may share a key (the message-id):
        # the index names the latest, and each forgets only its own entry.
        if self._acks.get(ack_id) is subscription:
            del self._acks[ack_id]

    def _prepare_ack(self, frame: Frame) -> Action:
        ack_id = self._ack_key(frame)
        subscription = self._acks.get(ack_id)
        if subscription is None:
            raise InvalidFrame("unknown ack id", details=f"no unacknowledged message {ack_id!r}")
        return _now(self._acknowledge, subscription, ack_id)

    def _acknowledge(self, subscription: Subscription, ack_id: str) -> None:
        if ack_id not in subscription.pending:
            return  # acknowledged already, earlier in the same transaction
        if subscription.ack_mode == "client":
            # STOMP 1.2 §SUBSCRIBE ack: in client mode an ACK is cumulative.
            while subscription.pending:
                oldest = next(iter(subscription.pending))
                del subscription.pending[oldest]
                self._forget_ack(subscription, oldest)
                if oldest == ack_id:
                    break
        else:
            del subscription.pending[ack_id]
            self._forget_ack(subscription, ack_id)

    def _ack_key(self, frame: Frame) -> str:
        if self.version == "1.2":
            return frame.get("id", "")
        return self._message_key(frame.get("subscription", ""), frame.get("message-id", ""))

    def _message_key(self, subscription_id: str, message_id: str) -> str:
        """The key an ACK names before 1.2: message-id, with subscription in 1.1."""
        return f"{subscription_id}\n{message_id}" if self.version == "1.1" else message_id

    # Writing.

    def deliver(self, subscription: Subscription, template: MessageTemplate) -> None:
        """Queue a MESSAGE for one of this session's subscriptions."""
        if self._close is not None:
            return
        ack = None
        if subscription.ack_mode != "auto":
            if len(self._acks) >= self.gateway.config.max_pending_acks:
                self.fail(
                    LimitExceeded(
                        "too many unacknowledged messages",
                        details=f"at most {self.gateway.config.max_pending_acks} may be pending",
                    )
                )
                return
            ack, key = self._next_ack(subscription, template.message_id)
            subscription.pending[key] = None
            self._acks[key] = subscription
        head = subscription.head
        if subscription.note:
            head, subscription.note = head + subscription.note, b""
        try:
            data = template.render(head, self.version, ack)
        except LocalProtocolError as exc:
            logger.warning("session %s cannot receive a message: %s", self.id, exc)
            return
        self._metrics.messages_sent += 1
        self._enqueue(data, Kind.TEXT if template.is_text else Kind.BINARY)

    def _next_ack(self, subscription: Subscription, message_id: str) -> tuple[str | None, str]:
        """Return the ``ack`` header (1.2 only) and the key an ACK will name."""
        if self.version == "1.2":
            ack = str(next(self._ack_ids))
            return ack, ack
        return None, self._message_key(subscription.id, message_id)

    def _send(self, frame: Frame) -> None:
        logger.debug("session %s >>> %s %s", self.id, frame.command.value, frame.headers)
        self._metrics.frames_sent[frame.command] += 1
        self._enqueue(self.session.serialize(frame), Kind.TEXT)

    def _enqueue(self, data: bytes, kind: Kind) -> None:
        """
        Queue ``data`` for the writer; never waits, so fan-out never does.

        The queue is bounded: over ``--max-outbound-bytes`` the connection is
        closed at once; over ``--outbound-low-water`` it has
        ``--send-time-limit`` seconds to get back under it (Spring's
        ``sendTimeLimit`` and ``sendBufferSizeLimit``).
        """
        self._outbound.append((data, kind))
        self._outbound_bytes += len(data)
        self._schedule_flush()
        config = self.gateway.config
        if self._outbound_bytes > config.max_outbound_bytes:
            self._slow_consumer(
                f"{self._outbound_bytes} bytes queued, over {config.max_outbound_bytes}"
            )
        elif self._outbound_bytes > self._low_water and self._drain_timer is None:
            self._drain_timer = self._loop.call_later(config.send_time_limit, self._check_drained)

    def _check_drained(self) -> None:
        self._drain_timer = None
        config = self.gateway.config
        if self._outbound_bytes > self._low_water and self._close is None:
            self._slow_consumer(
                f"{self._outbound_bytes} bytes still queued after {config.send_time_limit:g} s"
            )

    def _slow_consumer(self, why: str) -> None:
        self._metrics.slow_consumer_disconnects += 1
        logger.warning(
            "session %s slow consumer remote=%s: %s",
            self.id,
            self.remote,
            why,
            extra=self._fields("slow consumer", why),
        )
        self._outbound = []
        self._outbound_bytes = 0
        self.session.close()
        reason = f"slow consumer: {why}"
        self.close(CloseCode.POLICY_VIOLATION, reason)
        # The writer may be blocked on this very socket: close it directly.
        closing = self.websocket.close(CloseCode.POLICY_VIOLATION, reason)
        self._closer = self._loop.create_task(closing)

    def _schedule_flush(self) -> None:
        if not self._flush_due and self._writer is None:
            self._flush_due = True
            self.gateway.flusher.add(self)

    def flush(self) -> None:
        """
        Write what is queued: at once while the socket keeps up, else from a
        task waiting for it to drain (back-pressure on the outbound queue);
        then close the WebSocket if asked to.
        """
        self._flush_due = False
        if self._writer is not None:
            return  # the writer takes what is queued, or the connection is closed
        messages = self._take()
        for index, (message, text) in enumerate(messages):
            if not self._keeps_up():
                self._writer = self._loop.create_task(self._write_out(messages[index:]))
                return
            self._write_now(message, text)
        if self._close is not None:
            self._writer = self._loop.create_task(self._write_out([]))

    def _take(self) -> list[tuple[Message, bool]]:
        """Take the queue, as WebSocket messages; note that the client is sent something."""
        batch, self._outbound = self._outbound, []
        self._outbound_bytes = 0
        if self._monitor is not None and batch:
            self._monitor.sent(self._loop.time())
        return self.framing.encode(batch) if batch else []

    async def _write_out(self, messages: list[tuple[Message, bool]]) -> None:
        """Write ``messages`` and what is queued meanwhile; then close, or leave it to flush()."""
        while messages:
            for message, text in messages:
                await self._write(message, text)
            messages = self._take()
        if self._close is None:
            self._writer = None
            return
        websocket = self.websocket
        for message in self.framing.closing(*self._close):
            await websocket.send(message)
        await websocket.close(*self._close)

    async def _write(self, message: str | bytes, text: bool) -> None:
        """
        Write one WebSocket message: at once while the socket keeps up, else
        waiting for its buffer to drain (back-pressure on the outbound queue).
        """
        if self._keeps_up():
            self._write_now(message, text)
        else:
            await self.websocket.send(message, text=text)

    def _keeps_up(self) -> bool:
        """Whether the socket's write buffer is under its high-water mark."""
        transport = self.websocket.transport
        return transport.get_write_buffer_size() < transport.get_write_buffer_limits()[1]

    def _write_now(self, message: str | bytes, text: bool) -> None:
        # websockets' own synchronous path: no lock, no context, no await.
        broadcast((self.websocket,), message, text=text)  # a failed write logs a warning

    # Timers.

    def _no_connect(self) -> None:
        if self.session.state is State.CONNECTING:
            self.fail(InvalidFrame("connect timeout", details="no CONNECT frame in time"))

    def heart_beat(self, now: float, horizon: float) -> float | None:
        """
        Close if the client fell silent, send the beat due before ``horizon``;
        return when to look again (see :class:`gateway.transport.heartbeats.HeartBeatWheel`).
        """
        monitor = self._monitor
        if monitor is None or self._close is not None:
            return None
        if self._holding:
            monitor.received(now)  # its data waits unread, see _unread
        if monitor.timed_out(now):
            self._metrics.heartbeat_timeouts += 1
            logger.info(
                "session %s heart-beat timeout remote=%s",
                self.id,
                self.remote,
                extra=self._fields("heart-beat timeout", "heart-beat timeout"),
            )
            self.session.close()
            self.close(CloseCode.POLICY_VIOLATION, "heart-beat timeout")
            return None
        if monitor.send_due(horizon):
            self._send_heart_beat()
            monitor.sent(now)
        return monitor.next_check()

    def _send_heart_beat(self) -> None:
        if not self.session.heart_beat[0]:
            self._enqueue(b"", Kind.HEARTBEAT)  # the transport's own, e.g. SockJS "h"
        elif not (
            self.framing.bare_beats
            and self._writer is None
            and not self._outbound
            and self._keeps_up()
            and write_server_beat(self.websocket)
        ):
            # STOMP 1.2 §Heart-beating: a heart-beat is a single EOL.
            self._enqueue(b"\n", Kind.TEXT)

    def _take_beats(self, taker: Callable[[bytes], bool] | None) -> None:
        """Let ``taker`` see each read of the socket first (None: no more)."""
        if isinstance(self.websocket, GatewayConnection):
            self.websocket.beats = taker

    def _beat_received(self, data: bytes) -> bool:
        """
        Take ``data``, what one read brought, if it is a client heart-beat
        that nothing else would notice (see :mod:`gateway.transport.websocket`); else leave
        it to the read loop.
        """
        if (
            client_beat(data)
            and self._monitor is not None
            and self.session.state is State.CONNECTED
            and not self.session.parser.buffered  # STOMP 1.2: EOLs between frames only
            and at_rest(self.websocket)
        ):
            self._monitor.received(self._loop.time())
            return True
        return False


# An effect: it runs, then returns what is still to complete (a bus
# acknowledgement), or None when it is done.
Action = Callable[[], Awaitable[Awaitable[None] | None]]


def _now(function: Callable[..., Awaitable[None] | None], *args: Any) -> Action:
    """Wrap a synchronous effect (it may return what the RECEIPT awaits) as an Action."""

    async def action() -> Awaitable[None] | None:
        return function(*args)

    return action


async def _nothing() -> None:
    return None


def _loggable(frame: Frame) -> Headers:
    """The headers of ``frame`` with credentials masked: tokens are never logged."""
    return tuple((k, "***" if k in _REDACTED else v) for k, v in frame.headers)


def _address(websocket: ServerConnection) -> str:
    address = websocket.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)
