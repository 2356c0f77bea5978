"""STOMP frames: the command enum, the frame value and the heart-beat event."""

from __future__ import annotations

import dataclasses
import enum
from typing import overload

__all__ = [
    "CLIENT_COMMANDS",
    "SERVER_COMMANDS",
    "Command",
    "Frame",
    "Headers",
    "HeartBeat",
]

Headers = tuple[tuple[str, str], ...]


class Command(enum.Enum):
    """STOMP commands (STOMP 1.2 §Client Frames, §Server Frames)."""

    # Client frames.
    CONNECT = "CONNECT"
    STOMP = "STOMP"
    SEND = "SEND"
    SUBSCRIBE = "SUBSCRIBE"
    UNSUBSCRIBE = "UNSUBSCRIBE"
    ACK = "ACK"
    NACK = "NACK"
    BEGIN = "BEGIN"
    COMMIT = "COMMIT"
    ABORT = "ABORT"
    DISCONNECT = "DISCONNECT"
    # Server frames.
    CONNECTED = "CONNECTED"
    MESSAGE = "MESSAGE"
    RECEIPT = "RECEIPT"
    ERROR = "ERROR"


SERVER_COMMANDS = frozenset({Command.CONNECTED, Command.MESSAGE, Command.RECEIPT, Command.ERROR})
CLIENT_COMMANDS = frozenset(Command) - SERVER_COMMANDS


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    """
    One STOMP frame.

    Headers keep their order and may repeat; :meth:`get` returns the first
    occurrence, as STOMP 1.2 §Repeated Header Entries requires.

    """

    command: Command
    headers: Headers = ()
    body: bytes = b""

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the value of the first header called ``name``."""
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def __contains__(self, name: object) -> bool:
        return any(key == name for key, _ in self.headers)

    def without(self, *names: str) -> Frame:
        """Return a copy of this frame without the headers in ``names``."""
        kept = tuple(item for item in self.headers if item[0] not in names)
        return dataclasses.replace(self, headers=kept)


@dataclasses.dataclass(frozen=True, slots=True)
class HeartBeat:
    """An end-of-line received between frames (STOMP 1.2 §Heart-beating)."""
