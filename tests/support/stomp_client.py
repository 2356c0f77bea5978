"""
A deliberately small STOMP over WebSocket client for the end-to-end tests.

Frames going out are built by hand (:func:`frame_bytes`), so the tests do not
trust the serializer under test; frames coming in are read with
:class:`protocol.Parser`. Every read has a timeout, so a missing frame fails
the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from protocol import Command, Frame, HeartBeat, Limits, Parser

__all__ = [
    "CHAT_FIELDS",
    "ERRORS",
    "SERVER",
    "STOMP_SUBPROTOCOLS",
    "TIMEOUT",
    "ClientFactory",
    "Closed",
    "StompTestClient",
    "chat_body",
    "chat_text",
    "escape",
    "frame_bytes",
    "stream",
    "texts",
]

TIMEOUT = 5.0
SERVER = "stomp-gateway/0.1.0"  # the CONNECTED frame's server header
ERRORS = "/user/queue/errors"  # where a session's application errors go
STOMP_SUBPROTOCOLS = [Subprotocol("v10.stomp"), Subprotocol("v11.stomp"), Subprotocol("v12.stomp")]

# The fields of a chat MESSAGE's JSON body, in the seed's order.
CHAT_FIELDS = [
    "id",
    "chatRoomId",
    "memberId",
    "nickname",
    "message",
    "fileId",
    "fileName",
    "createAt",
]

Header = tuple[str, str]


def escape(value: str, version: str) -> str:
    """Escape a header value for ``version``, independently of :mod:`protocol`."""
    if version == "1.0":
        return value
    value = value.replace("\\", "\\\\").replace("\n", "\\n").replace(":", "\\c")
    return value.replace("\r", "\\r") if version == "1.2" else value


def frame_bytes(command: str, headers: Iterable[Header] = (), body: bytes | str = b"") -> bytes:
    """
    Build a frame by hand: nothing is escaped and no header is added.

    Header values must be escaped already (see :func:`escape`).
    """
    if isinstance(body, str):
        body = body.encode()
    head = command + "\n" + "".join(f"{name}:{value}\n" for name, value in headers) + "\n"
    return head.encode() + body + b"\0"


def chat_body(text: str = "hi", member_id: int = 7, nickname: str = "henhen") -> bytes:
    """Return the JSON body of a chat SEND."""
    fields = {"memberId": member_id, "nickname": nickname, "message": text}
    return json.dumps(fields, ensure_ascii=False).encode()


class Closed(Exception):
    """The server closed the WebSocket while a frame was awaited."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"connection closed: code={code} reason={reason!r}")
        self.code = code
        self.reason = reason


class StompTestClient:
    """
    One raw WebSocket connection speaking hand-built STOMP.

    Attributes:
        ws: The WebSocket.
        version: The STOMP version negotiated by :meth:`connect` (escaping of
            the headers this client sends through its helpers).
        received: Every WebSocket message received, as ``str`` (text) or ``bytes``.

    """

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.version = "1.0"
        self.parser = Parser(Limits(max_frame_size=2**26, max_headers=1000, max_header_line=2**20))
        self.received: list[str | bytes] = []
        self._events: deque[tuple[Frame | HeartBeat, bool]] = deque()
        self._receipts = 0

    @classmethod
    async def open(
        cls,
        port: int,
        path: str = "/ws",
        *,
        subprotocols: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> StompTestClient:
        """Open a WebSocket to the gateway on ``port``."""
        ws = await connect(
            f"ws://127.0.0.1:{port}{path}",
            subprotocols=None if subprotocols is None else [Subprotocol(s) for s in subprotocols],
            open_timeout=TIMEOUT,
            close_timeout=TIMEOUT,
            **kwargs,
        )
        return cls(ws)

    async def __aenter__(self) -> StompTestClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.ws.close()

    # Sending.

    async def send_raw(self, data: bytes | str, *, binary: bool = False) -> None:
        """Send one WebSocket message: text unless ``binary`` (or ``data`` is not UTF-8)."""
        if isinstance(data, str):
            data = data.encode()
        if binary:
            await self.ws.send(data, text=False)
            return
        try:
            await self.ws.send(data.decode())
        except UnicodeDecodeError:
            await self.ws.send(data, text=False)

    async def send(
        self,
        command: str,
        headers: Iterable[Header] = (),
        body: bytes | str = b"",
        *,
        binary: bool = False,
    ) -> None:
        """Send one frame, escaping header names and values for :attr:`version`."""
        escaped = [(escape(k, self.version), escape(v, self.version)) for k, v in headers]
        await self.send_raw(frame_bytes(command, escaped, body), binary=binary)

    def next_receipt(self) -> str:
        self._receipts += 1
        return f"r-{self._receipts}"

    # Receiving.

    async def _fill(self, timeout: float) -> None:
        try:
            message = await asyncio.wait_for(self.ws.recv(), timeout)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            raise Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None
        self.received.append(message)
        is_text = isinstance(message, str)
        data = message.encode() if isinstance(message, str) else message
        for event in self.parser.feed(data):
            self._events.append((event, is_text))

    async def read_event(self, timeout: float = TIMEOUT) -> tuple[Frame | HeartBeat, bool]:
        """Return the next frame or heart-beat, and whether it came in a text message."""
        while not self._events:
            await self._fill(timeout)
        return self._events.popleft()

    async def read_frame_typed(self, timeout: float = TIMEOUT) -> tuple[Frame, bool]:
        """Return the next frame (heart-beats skipped) and whether it came as text."""
        while True:
            event, is_text = await self.read_event(timeout)
            if isinstance(event, Frame):
                return event, is_text

    async def read_frame(self, timeout: float = TIMEOUT) -> Frame:
        """Return the next frame, skipping heart-beats."""
        frame, _ = await self.read_frame_typed(timeout)
        return frame

    async def expect(self, command: Command, timeout: float = TIMEOUT) -> Frame:
        """Return the next frame, which must be a ``command``."""
        frame = await self.read_frame(timeout)
        assert frame.command is command, f"expected {command.value}, got {frame}"
        return frame

    async def expect_receipt(self, receipt: str) -> None:
        """
        Wait for the RECEIPT of ``receipt``.

        Frames that arrive first (MESSAGEs queued before the RECEIPT) stay
        unread, for the next :meth:`read_frame`.
        """
        skipped: list[tuple[Frame | HeartBeat, bool]] = []
        while True:
            event, is_text = await self.read_event()
            if (
                isinstance(event, Frame)
                and event.command is Command.RECEIPT
                and event.get("receipt-id") == receipt
            ):
                break
            assert not (isinstance(event, Frame) and event.command is Command.ERROR), event
            skipped.append((event, is_text))
        self._events.extendleft(reversed(skipped))

    async def read_until_closed(self, timeout: float = TIMEOUT) -> tuple[list[Frame], int | None]:
        """Read every frame until the server closes; return them and the close code."""
        frames: list[Frame] = []
        while True:
            try:
                frames.append(await self.read_frame(timeout))
            except Closed as exc:
                return frames, exc.code

    async def expect_error_and_close(self, timeout: float = TIMEOUT) -> Frame:
        """The server must send exactly one ERROR, then close the WebSocket (1002)."""
        frames, code = await self.read_until_closed(timeout)
        assert [f.command for f in frames] == [Command.ERROR], frames
        assert code == 1002, code
        error = frames[0]
        assert error.get("message"), error
        return error

    # Session helpers.

    async def connect(
        self,
        accept_version: str | None = "1.2",
        *,
        command: str = "CONNECT",
        heart_beat: str | None = None,
        headers: Iterable[Header] = (),
    ) -> Frame:
        """Send CONNECT (never escaped) and return CONNECTED."""
        sent: list[Header] = []
        if accept_version is not None:
            sent.append(("accept-version", accept_version))
        sent.append(("host", "localhost"))
        if heart_beat is not None:
            sent.append(("heart-beat", heart_beat))
        sent.extend(headers)
        await self.send_raw(frame_bytes(command, sent))
        connected = await self.expect(Command.CONNECTED)
        self.version = connected.get("version", "1.0")
        self.parser.version = self.version
        return connected

    async def subscribe(
        self,
        destination: str,
        subscription_id: str = "sub-0",
        *,
        ack: str | None = None,
        headers: Iterable[Header] = (),
    ) -> None:
        """SUBSCRIBE and wait for its RECEIPT."""
        receipt = self.next_receipt()
        sent = [("id", subscription_id), ("destination", destination)]
        if ack is not None:
            sent.append(("ack", ack))
        await self.send("SUBSCRIBE", [*sent, *headers, ("receipt", receipt)])
        await self.expect_receipt(receipt)

    async def unsubscribe(self, subscription_id: str) -> None:
        """UNSUBSCRIBE and wait for its RECEIPT."""
        receipt = self.next_receipt()
        await self.send("UNSUBSCRIBE", [("id", subscription_id), ("receipt", receipt)])
        await self.expect_receipt(receipt)

    async def send_chat(self, room: int | str, body: bytes, *, receipt: bool = True) -> None:
        """SEND to ``/pub/chat/{room}``; with ``receipt``, wait for the RECEIPT."""
        headers = [("destination", f"/pub/chat/{room}"), ("content-type", "application/json")]
        if not receipt:
            await self.send("SEND", headers, body)
            return
        name = self.next_receipt()
        await self.send("SEND", [*headers, ("receipt", name)], body)
        await self.expect_receipt(name)

    async def barrier(self) -> list[Frame]:
        """
        Round-trip a no-op frame with a receipt; return the frames that came first.

        Everything the server queued for this connection before it read the
        barrier arrives before its RECEIPT.
        """
        receipt = self.next_receipt()
        transaction = f"barrier-{receipt}"
        await self.send_raw(
            frame_bytes("BEGIN", [("transaction", transaction), ("receipt", receipt)])
            + frame_bytes("ABORT", [("transaction", transaction)])
        )
        frames: list[Frame] = []
        while True:
            frame = await self.read_frame()
            if frame.command is Command.RECEIPT and frame.get("receipt-id") == receipt:
                return frames
            frames.append(frame)

    async def close(self) -> None:
        await self.ws.close()


ClientFactory = Callable[..., Awaitable[StompTestClient]]


async def connected(port: int, opened: list[StompTestClient]) -> StompTestClient:
    """Open a client, add it to ``opened`` (closed by the ``clients`` fixture), CONNECT 1.2."""
    client = await StompTestClient.open(port)
    opened.append(client)
    await client.connect("1.2")
    return client


def payload(frame: Frame) -> dict[str, Any]:
    """The chat JSON a MESSAGE carries."""
    assert frame.command is Command.MESSAGE, frame
    body: dict[str, Any] = json.loads(frame.body)
    return body


def chat_text(frame: Frame) -> str:
    """The text of a chat MESSAGE."""
    text: str = payload(frame)["message"]
    return text


def texts(frames: list[Frame]) -> list[str]:
    """The texts of the chat MESSAGEs among ``frames``, in order."""
    return [chat_text(frame) for frame in frames if frame.command is Command.MESSAGE]


async def stream(sender: StompTestClient, sent: dict[str, str], room: int) -> None:
    """
    SEND a chat message to ``room`` every 50 ms, each with a receipt, until the
    server closes; ``sent`` maps each receipt id to the message's text.
    """
    for number in itertools.count():
        text = f"m-{number}"
        sent[f"r-{number}"] = text
        request = frame_bytes(
            "SEND",
            [("destination", f"/pub/chat/{room}"), ("receipt", f"r-{number}")],
            chat_body(text),
        )
        try:
            await sender.send_raw(request)
        except Exception:
            return
        await asyncio.sleep(0.05)
