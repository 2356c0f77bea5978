"""
A WebSocket without a socket, for testing :class:`StompConnection` alone.

The server end is a real ``websockets`` connection (:class:`StompWebSocket`)
over :class:`FakeTransport`, which keeps what is written in memory; the
client end is ``websockets``' sans-I/O :class:`ClientProtocol`. Bytes go
across as soon as they are written, so the close handshake completes as over
a socket, and a test can stall the socket (:meth:`FakeClient.stall`) to
see what a slow consumer gets.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.frames import Close, Opcode
from websockets.frames import Frame as WebSocketFrame
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from gateway.chat.registry import SubscriptionRegistry
from gateway.config import Config
from gateway.metrics import Metrics
from gateway.transport.connection import StompConnection
from gateway.transport.flusher import Flusher
from gateway.transport.framing import RawFraming
from gateway.transport.handlers import (
    Action,
    Refusal,
    Session,
    Subscribing,
    Subscription,
    at_once,
)
from gateway.transport.heartbeats import HeartBeatWheel
from gateway.transport.shared import Shared
from gateway.transport.websocket import StompWebSocket
from protocol import Frame, HeartBeatPolicy, Limits, MessageTemplate, Parser, SubscriptionPolicy

PEER = ("198.51.100.7", 4711)
# Where the recording handlers tell a client its frames were refused.
ERRORS = "/errors"


class FakeTransport(asyncio.Transport):
    """An asyncio transport that hands what is written to the client end."""

    def __init__(self, client: FakeClient) -> None:
        super().__init__()
        self._client = client
        self._closed = False
        self._limits = (16 * 1024, 64 * 1024)
        self._backlog = 0  # bytes "in the socket" while stalled
        self._paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            return
        if not self._client.stalled:
            self._client.receive(bytes(data))
            return
        self._backlog += len(data)
        self._client.held += bytes(data)
        if self._backlog > self._limits[1] and not self._paused:
            self._paused = True
            self._client.websocket.pause_writing()  # as a socket transport does

    def drained(self) -> None:
        """The client read everything: the socket's buffer is empty again."""
        self._backlog = 0
        if self._paused:
            self._paused = False
            self._client.websocket.resume_writing()

    def get_write_buffer_size(self) -> int:
        return self._backlog

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._limits

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is not None:
            self._limits = (low if low is not None else high // 4, high)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            loop = asyncio.get_running_loop()
            loop.call_soon(self._client.websocket.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return PEER if name == "peername" else default


class _NoServer:
    """Stands in for the ``websockets`` server: the handshake is over already."""

    def __init__(self) -> None:
        self.handler_tasks: set[asyncio.Task[None]] = set()

    async def handler(self, connection: object) -> None:
        return None


class FakeClient:
    """The client end: sends STOMP, collects STOMP frames and the close frame."""

    def __init__(self) -> None:
        self.protocol = ClientProtocol(parse_uri("ws://gateway.test/stomp"), state=State.OPEN)
        self.parser = Parser()
        self.frames: list[Frame] = []
        self.beats = 0
        self.close: Close | None = None
        self.stalled = False
        self.held = b""
        protocol = ServerProtocol(state=State.OPEN)
        self.websocket = StompWebSocket(protocol, _NoServer(), ping_interval=None)  # type: ignore[arg-type]
        self.websocket.request = Request("/stomp", Headers())  # the handshake is over
        self.transport = FakeTransport(self)
        self.websocket.connection_made(self.transport)

    def receive(self, data: bytes) -> None:
        """What the server wrote, as the client reads it."""
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            assert isinstance(event, WebSocketFrame)
            self._event(event)
        for reply in self.protocol.data_to_send():
            if reply:  # the close handshake's answer
                asyncio.get_running_loop().call_soon(self._deliver, reply)

    def _event(self, event: WebSocketFrame) -> None:
        if event.opcode is Opcode.CLOSE:
            self.close = Close.parse(event.data)
        elif event.opcode in (Opcode.TEXT, Opcode.BINARY):
            for parsed in self.parser.feed(bytes(event.data)):
                if isinstance(parsed, Frame):
                    self.frames.append(parsed)
                else:
                    self.beats += 1

    def _deliver(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.websocket.data_received(data)

    def send(self, text: str) -> None:
        """Send ``text`` as one WebSocket text message."""
        self.protocol.send_text(text.encode())
        for data in self.protocol.data_to_send():
            self._deliver(data)

    def close_with(self, code: int, reason: str) -> None:
        """Start the closing handshake."""
        self.protocol.send_close(code, reason)
        for data in self.protocol.data_to_send():
            self._deliver(data)

    def send_frame(self, command: str, *headers: tuple[str, str], body: str = "") -> None:
        """Send one STOMP frame."""
        lines = "".join(f"{name}:{value}\n" for name, value in headers)
        self.send(f"{command}\n{lines}\n{body}\0")

    def stall(self) -> None:
        """Stop reading: what the server writes stays in the socket's buffer."""
        self.stalled = True

    def drain(self) -> None:
        """Read again, starting with what the stalled socket holds."""
        self.stalled = False
        held, self.held = self.held, b""
        self.receive(held)
        self.transport.drained()

    def commands(self) -> list[str]:
        return [frame.command.value for frame in self.frames]


@dataclasses.dataclass
class Call:
    """One call of the application's handlers."""

    name: str
    frame: Frame | None = None


class RecordingHandlers:
    """
    Handlers that record their calls; a test decides what each SEND awaits
    (:attr:`acks`, by the SEND's ``id`` header) and what is refused.
    """

    def __init__(self, session: Session, app: FakeApplication) -> None:
        self.session = session
        self.app = app

    def _record(self, name: str, frame: Frame | None = None) -> None:
        self.app.calls.append(Call(name, frame))

    def on_connect(self, frame: Frame) -> None:
        self._record("on_connect", frame)
        if (error := self.app.refuse_connect) is not None:
            raise error

    def on_connected(self) -> None:
        self._record("on_connected")

    async def authorize(self, frame: Frame) -> None:
        self._record("authorize", frame)
        if frame.get("forbidden") is not None:
            raise Refusal(f"forbidden: {frame.get('destination')}")

    def on_send(self, frame: Frame) -> Action:
        self._record("on_send", frame)
        if (reason := frame.get("refuse")) is not None:
            raise Refusal(reason)
        if (failure := self.app.failure) is not None:
            raise failure
        ack = self.app.acks.get(frame.get("id", ""))
        return at_once(self._sent, frame, ack)

    def _sent(self, frame: Frame, ack: Awaitable[None] | None) -> Awaitable[None] | None:
        self._record("sent", frame)
        return ack

    def on_subscribe(self, frame: Frame) -> Subscribing:
        self._record("on_subscribe", frame)
        return self._subscribe

    async def _subscribe(
        self, subscription: Subscription, subscribe: Callable[[], Awaitable[None] | None]
    ) -> Awaitable[None] | None:
        self.app.subscriptions.append(subscription)
        return subscribe()

    def on_unsubscribe(self, subscription: Subscription) -> None:
        self._record("on_unsubscribe")

    def on_refused(self, reason: str, receipt: str | None) -> None:
        """Record the refusal, and tell it on ERRORS as the chat tells it on its errors queue."""
        self.app.refused.append((reason, receipt))
        headers = (("destination", ERRORS), ("message-id", reason), ("receipt-id", receipt or ""))
        template = MessageTemplate(headers, reason.encode())
        for subscription in self.app.registry.of(self.session, ERRORS):
            self.session.deliver(subscription, template)

    def on_disconnect(self) -> None:
        self._record("on_disconnect")


@dataclasses.dataclass
class FakeApplication:
    """What the recording handlers of every connection share."""

    registry: SubscriptionRegistry
    calls: list[Call] = dataclasses.field(default_factory=list)
    acks: dict[str, asyncio.Future[None]] = dataclasses.field(default_factory=dict)
    refused: list[tuple[str, str | None]] = dataclasses.field(default_factory=list)
    subscriptions: list[Subscription] = dataclasses.field(default_factory=list)
    refuse_connect: Exception | None = None
    failure: Exception | None = None

    def __call__(self, session: Session) -> RecordingHandlers:
        return RecordingHandlers(session, self)

    def names(self) -> list[str]:
        return [call.name for call in self.calls]


class Harness:
    """One StompConnection over a fake WebSocket, served by a task."""

    def __init__(self, config: Config | None = None, policy: HeartBeatPolicy | None = None) -> None:
        self.config = config or Config()
        self.registry = SubscriptionRegistry()
        self.app = FakeApplication(self.registry)
        self.metrics = Metrics()
        self.client = FakeClient()
        self.shared = Shared(
            settings=self.config,
            limits=self.config.component(Limits),
            heart_beat_policy=policy or HeartBeatPolicy(),
            subscription_policy=self.config.component(SubscriptionPolicy),
            metrics=self.metrics,
            heart_beats=HeartBeatWheel(0.05),
            flusher=Flusher(),
            subscriptions=self.registry,
            handlers=self.app,
            send_budget=_unlimited,
            redacted=frozenset({"passcode"}),
        )
        self.connection = StompConnection(self.client.websocket, RawFraming(), self.shared)
        self.task = asyncio.create_task(self.connection.run())

    async def settle(self) -> None:
        """Let every callback and task ready to run, run (a few turns of the loop)."""
        for _ in range(20):
            await asyncio.sleep(0)

    async def connect(self, *headers: tuple[str, str]) -> None:
        self.client.send_frame("CONNECT", ("accept-version", "1.2"), ("host", "h"), *headers)
        await self.settle()
        assert self.client.commands() == ["CONNECTED"]
        self.client.frames.clear()

    async def closed(self) -> Close:
        """Wait until the connection is served to its end; return the close frame."""
        await asyncio.wait_for(self.task, 10)
        assert self.client.close is not None
        return self.client.close


class _Unlimited:
    def take(self, now: float, count: int = 1) -> bool:
        return True

    def borrow(self, now: float) -> float:
        return 0.0


def _unlimited(now: float) -> _Unlimited:
    return _Unlimited()
