"""
How STOMP bytes travel in WebSocket messages: raw, or inside SockJS frames.

Raw STOMP over WebSocket sends each STOMP frame (or heart-beat) as one message.
SockJS (https://github.com/sockjs/sockjs-protocol, 0.3.3) wraps text in its
own frames: ``o`` on open, ``a["...","..."]`` carrying STOMP text, ``h`` as
its heart-beat and ``c[code,"reason"]`` before closing; the client sends a
JSON array of strings (or one JSON string).
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Iterable
from typing import Protocol

from persistence import InvalidJson, load_json

__all__ = [
    "COALESCE_BYTES",
    "SOCKJS_HEARTBEAT_MS",
    "Framing",
    "FramingError",
    "Kind",
    "Message",
    "Outbound",
    "RawFraming",
    "SockJSFraming",
]

logger = logging.getLogger(__name__)

SOCKJS_HEARTBEAT_MS = 25_000  # sockjs-node's default heartbeat_delay
COALESCE_BYTES = 64 * 1024  # largest WebSocket message made of several frames


class Kind(enum.IntEnum):
    """What an outbound item is."""

    TEXT = 0  # STOMP bytes that are valid UTF-8
    BINARY = 1  # STOMP bytes that are not
    HEARTBEAT = 2  # the transport's own keep-alive, when STOMP negotiated none


Outbound = tuple[bytes, Kind]
Message = str | bytes


class FramingError(ValueError):
    """A WebSocket message that the transport cannot read; the reason says why."""


class Framing(Protocol):
    """Turns WebSocket messages into STOMP bytes and back."""

    idle_heartbeat_ms: int  # keep-alive interval when STOMP negotiated none (0: none)
    # Whether a STOMP heart-beat travels alone as a bare WebSocket message (an
    # EOL), so that it may be written and recognized on the wire (gateway.transport.websocket).
    bare_beats: bool

    def opening(self) -> list[Message]:
        """Messages sent as soon as the WebSocket is open."""

    def decode(self, message: Message) -> list[bytes]:
        """Return the STOMP bytes in ``message``; raise :class:`FramingError`."""

    def encode(self, batch: Iterable[Outbound]) -> list[tuple[Message, bool]]:
        """Return the messages, each with its text flag, carrying ``batch`` in order."""

    def closing(self, code: int, reason: str) -> list[Message]:
        """Messages sent just before the WebSocket closes."""


class RawFraming:
    """
    STOMP over WebSocket: STOMP frames in messages, text when UTF-8.

    Frames ready together go in one message, up to :data:`COALESCE_BYTES`:
    clients split a message on the NUL ending each frame (@stomp/stompjs 7
    parses a byte stream; stompjs 2.3.3 splits on NUL followed by any EOLs).
    A heart-beat (a lone EOL) always travels alone: stompjs 2.3.3 recognizes
    it only as a whole message, and would read an EOL before a frame as an
    empty command.
    """

    idle_heartbeat_ms = 0
    bare_beats = True

    def opening(self) -> list[Message]:
        return []

    def decode(self, message: Message) -> list[bytes]:
        return [message.encode() if isinstance(message, str) else message]

    def encode(self, batch: Iterable[Outbound]) -> list[tuple[Message, bool]]:
        messages: list[tuple[Message, bool]] = []
        frames: list[bytes] = []
        size = 0
        for data, kind in batch:
            if kind is Kind.TEXT and data != b"\n" and size + len(data) <= COALESCE_BYTES:
                frames.append(data)
                size += len(data)
                continue
            messages.extend(_joined(frames))
            frames, size = [], 0
            if kind is Kind.TEXT and data != b"\n":
                frames, size = [data], len(data)
            elif kind is not Kind.HEARTBEAT:
                messages.append((data, kind is Kind.TEXT))
        messages.extend(_joined(frames))
        return messages

    def closing(self, code: int, reason: str) -> list[Message]:
        return []


def _joined(frames: list[bytes]) -> list[tuple[Message, bool]]:
    if not frames:
        return []
    return [(frames[0] if len(frames) == 1 else b"".join(frames), True)]


class SockJSFraming:
    """
    STOMP inside SockJS frames; everything ready together goes in one ``a[...]``.

    Args:
        heartbeat_ms: Interval of ``h`` frames when STOMP negotiated no heart-beats.

    """

    bare_beats = False  # inside a["\n"]

    def __init__(self, heartbeat_ms: int = SOCKJS_HEARTBEAT_MS) -> None:
        self.idle_heartbeat_ms = heartbeat_ms

    def opening(self) -> list[Message]:
        return ["o"]

    def decode(self, message: Message) -> list[bytes]:
        if not message:
            return []  # sockjs-node ignores empty messages
        try:
            payload = load_json(
                message.encode() if isinstance(message, str) else message, utf8_only=True
            )
        except InvalidJson as exc:
            raise FramingError(f"invalid SockJS message: {exc}") from None
        if isinstance(payload, str):
            payload = [payload]
        if not isinstance(payload, list) or not all(isinstance(item, str) for item in payload):
            raise FramingError("invalid SockJS message: expected a JSON array of strings")
        return [item.encode() for item in payload]

    def encode(self, batch: Iterable[Outbound]) -> list[tuple[Message, bool]]:
        messages: list[tuple[Message, bool]] = []
        texts: list[str] = []
        for data, kind in batch:
            if kind is Kind.HEARTBEAT:
                messages.extend(self._array(texts))
                texts = []
                messages.append(("h", True))
            elif kind is Kind.BINARY:
                logger.warning(
                    "dropping a %d-byte frame that is not UTF-8: SockJS is text", len(data)
                )
            else:
                texts.append(data.decode())
        messages.extend(self._array(texts))
        return messages

    @staticmethod
    def _array(texts: list[str]) -> list[tuple[Message, bool]]:
        if not texts:
            return []
        return [("a" + json.dumps(texts, ensure_ascii=False, separators=(",", ":")), True)]

    def closing(self, code: int, reason: str) -> list[Message]:
        return ["c" + json.dumps([code, reason], ensure_ascii=False, separators=(",", ":"))]
