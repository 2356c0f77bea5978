"""
End-to-end tests with ``stomp.py`` 9.0.0 (PyPI ``stomp.py``, ``import stomp``)
over its WebSocket transport, ``stomp.WSStompConnection`` (STOMP 1.2 on
``websocket-client``, a dependency of stomp.py).

stomp.py is synchronous: it writes from the calling thread and reads in a
receiver thread of its own. Every blocking call runs in a worker thread
(``asyncio.to_thread``) so the in-process gateway's event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import stomp
from stomp.utils import Frame

from gateway import Gateway
from tests.support.node import OBJECT_ID, chat_message, wait_registry
from tests.support.servers import GatewayFactory

WAIT = 10.0  # seconds any single expected frame may take
HELLO = "안녕하세요 👋🏽"


class Recorder(stomp.ConnectionListener):  # type: ignore[misc]
    """Keeps every frame and event stomp.py reports; waits for them across threads."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Frame | None]] = []
        self._changed = threading.Condition()

    def _add(self, kind: str, frame: Frame | None) -> None:
        with self._changed:
            self.events.append((kind, frame))
            self._changed.notify_all()

    def on_connected(self, frame: Frame) -> None:
        self._add("connected", frame)

    def on_message(self, frame: Frame) -> None:
        self._add("message", frame)

    def on_receipt(self, frame: Frame) -> None:
        self._add("receipt", frame)

    def on_error(self, frame: Frame) -> None:
        self._add("error", frame)

    def on_disconnected(self) -> None:
        self._add("disconnected", None)

    def on_heartbeat(self) -> None:
        self._add("heartbeat", None)

    def count(self, kind: str) -> int:
        with self._changed:
            return sum(1 for k, _ in self.events if k == kind)

    def of(self, kind: str) -> list[Frame]:
        with self._changed:
            return [frame for k, frame in self.events if k == kind and frame is not None]

    def messages(self, destination: str) -> list[Frame]:
        return [f for f in self.of("message") if f.headers["destination"] == destination]

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        with self._changed:
            if not self._changed.wait_for(ready, timeout):
                kinds = [kind for kind, _ in self.events]
                raise AssertionError(f"no {what} within {timeout} s; events so far: {kinds}")

    async def wait(self, ready: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        """Wait in a worker thread until ``ready()`` holds."""
        await asyncio.to_thread(self._wait, ready, what, timeout)

    async def wait_messages(self, destination: str, count: int) -> list[Frame]:
        await self.wait(
            lambda: len(self.messages(destination)) >= count, f"{count} messages to {destination}"
        )
        return self.messages(destination)

    async def wait_receipt(self, receipt: str) -> Frame:
        def arrived() -> list[Frame]:
            return [f for f in self.of("receipt") if f.headers.get("receipt-id") == receipt]

        await self.wait(lambda: bool(arrived()), f"RECEIPT {receipt}")
        [frame] = arrived()
        return frame


class Client:
    """One ``stomp.WSStompConnection`` and what it received."""

    def __init__(self, port: int, path: str = "/ws", **options: Any) -> None:
        options.setdefault("heartbeats", (0, 0))
        self.connection = stomp.WSStompConnection(
            [("127.0.0.1", port)], ws_path=path, reconnect_attempts_max=1, **options
        )
        self.recorder = Recorder()
        self.connection.set_listener("recorder", self.recorder)

    async def connect(self, **headers: Any) -> dict[str, str]:
        """Connect (wait for CONNECTED) and return the CONNECTED headers."""
        await asyncio.to_thread(self.connection.connect, wait=True, **headers)
        # stomp.py may return before its receiver thread has told the listeners.
        await self.recorder.wait(lambda: bool(self.recorder.of("connected")), "CONNECTED")
        [connected] = self.recorder.of("connected")
        result: dict[str, str] = connected.headers
        return result

    async def subscribe(self, destination: str, subscription: str) -> None:
        receipt = f"sub-{subscription}"
        await asyncio.to_thread(
            self.connection.subscribe, destination, subscription, headers={"receipt": receipt}
        )
        frame = await self.recorder.wait_receipt(receipt)
        assert frame.headers == {"receipt-id": receipt}

    async def send(self, destination: str, body: str, **headers: Any) -> None:
        await asyncio.to_thread(self.connection.send, destination, body, headers=headers)

    async def disconnect(self) -> None:
        """DISCONNECT with a receipt (stomp.py waits for it), then close."""
        await asyncio.to_thread(self.connection.disconnect, receipt="bye")
        receipt = await self.recorder.wait_receipt("bye")
        assert receipt.headers == {"receipt-id": "bye"}
        await self.recorder.wait(lambda: self.recorder.count("disconnected") > 0, "disconnection")
        assert not self.connection.is_connected()


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    """Clients to close afterwards if a test failed half-way."""
    started: list[Client] = []
    yield started
    for client in started:
        if client.connection.is_connected():
            await asyncio.to_thread(client.connection.disconnect)


def check_connected(headers: dict[str, str], heart_beat: str = "0,10000") -> None:
    assert headers == {
        "version": "1.2",
        "heart-beat": heart_beat,
        "server": "stomp-gateway/0.1.0",
        "session": headers["session"],
    }
    assert re.fullmatch(r"[0-9a-f]{16}", headers["session"])


def check_chat(frame: Frame, subscription: str, room: int, sent: dict[str, Any]) -> None:
    """
    Check every header and field of a chat MESSAGE as stomp.py received it.

    The checks are those of the Node clients' tests (``chat_message``), so both
    follow one definition of the MESSAGE.
    """
    assert isinstance(frame.body, str)  # auto_decode: the body decoded as UTF-8
    raw = frame.body.encode()
    event = {
        "command": frame.cmd,
        "headers": frame.headers,
        "body": frame.body,
        "bodyBase64": base64.b64encode(raw).decode(),
        "callback": frame.headers.get("subscription"),
    }
    chat_message(event, subscription, room, sent)


@pytest.mark.parametrize("binary_mode", [False, True], ids=["text", "binary"])
async def test_chat_round_trip(gateway: Gateway, clients: list[Client], binary_mode: bool) -> None:
    client = Client(gateway.port, binary_mode=binary_mode)
    other = Client(gateway.port)
    clients += [client, other]
    check_connected(await client.connect())
    check_connected(await other.connect())
    await client.subscribe("/sub/chat/4", "room-4")
    await client.subscribe("/sub/pong", "pong")
    await other.subscribe("/sub/chat/4", "other-4")
    await other.subscribe("/sub/pong", "other-pong")
    assert len(gateway.registry) == 4

    chat = {"memberId": 7, "nickname": "henhen", "message": HELLO}
    file = {"memberId": 7, "nickname": "henhen", "fileId": 12, "fileName": "a.png"}
    for body in (chat, file):
        await client.send("/pub/chat/4", json.dumps(body, ensure_ascii=False))
    await client.send("/pub/ping", json.dumps({"message": "ping"}), receipt="ping")
    await client.recorder.wait_receipt("ping")

    for receiver, subscription in ((client, "room-4"), (other, "other-4")):
        messages = await receiver.recorder.wait_messages("/sub/chat/4", 2)
        assert len(messages) == 2
        for frame, sent in zip(messages, (chat, file), strict=True):
            check_chat(frame, subscription, 4, sent)
    ids = [json.loads(f.body)["id"] for f in client.recorder.messages("/sub/chat/4")]
    assert ids == [json.loads(f.body)["id"] for f in other.recorder.messages("/sub/chat/4")]

    [pong] = client.recorder.messages("/sub/pong")
    assert pong.body == "pong"
    assert OBJECT_ID.fullmatch(pong.headers["message-id"])
    assert pong.headers == {
        "subscription": "pong",
        "destination": "/sub/pong",
        "message-id": pong.headers["message-id"],
        "content-type": "text/plain;charset=UTF-8",
        "content-length": "4",
    }
    # The pong is the pinger's alone (other has both chat messages, queued after it).
    assert other.recorder.messages("/sub/pong") == []
    assert client.recorder.of("error") == other.recorder.of("error") == []

    await client.disconnect()
    await other.disconnect()
    await wait_registry(gateway, 0)


async def test_connect_command_and_heart_beats(
    make_gateway: GatewayFactory, clients: list[Client]
) -> None:
    gateway = await make_gateway(
        heartbeat_interval=1000, heartbeat_floor=1000, heartbeat_tolerance=2.0
    )
    client = Client(gateway.port, heartbeats=(1000, 1000))
    clients.append(client)
    # CONNECT rather than stomp.py's default STOMP frame.
    check_connected(await client.connect(with_connect_command=True), heart_beat="1000,1000")
    await client.subscribe("/sub/chat/9", "nine")
    # Idle for longer than the server's tolerance (2 intervals): only stomp.py's
    # heart-beats keep the session open, and the server's reach stomp.py.
    await asyncio.sleep(2.6)
    assert client.connection.is_connected()
    assert client.recorder.count("heartbeat") >= 2
    assert client.recorder.count("disconnected") == 0
    assert len(gateway.registry) == 1
    sent = {"memberId": 1, "nickname": "n", "message": "still here"}
    await client.send("/pub/chat/9", json.dumps(sent))
    [frame] = await client.recorder.wait_messages("/sub/chat/9", 1)
    check_chat(frame, "nine", 9, sent)
    assert client.recorder.of("error") == []
    await client.disconnect()
    await wait_registry(gateway, 0)
