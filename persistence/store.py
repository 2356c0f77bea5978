"""The message store interface: what the gateway needs from MongoDB or its stand-in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .messages import ChatMessage

__all__ = ["MessageStore"]


class MessageStore(Protocol):
    """Keeps the chat history of every room."""

    async def start(self) -> None:
        """Connect and prepare (indexes, ...)."""

    async def close(self) -> None:
        """Release connections."""

    async def save(self, messages: Sequence[ChatMessage]) -> None:
        """Store ``messages``; saving a message twice keeps one copy."""

    async def history(self, room_id: int, *, before: str | None, limit: int) -> list[ChatMessage]:
        """
        Return up to ``limit`` messages of the room, oldest first.

        They are the newest ones older than the message ``before`` (an id),
        or the newest ones of all when ``before`` is None.
        """
