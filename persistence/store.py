"""The message store interface: what the gateway needs from MongoDB or its stand-in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .messages import ChatMessage

__all__ = ["MessageStore", "StoreError"]


class StoreError(Exception):
    """The store could not take a write; trying again loses and duplicates nothing."""


class MessageStore(Protocol):
    """
    Keeps the chat history of every room.

    Attributes:
        shared: True when every gateway instance uses the same store
            (MongoDB), False when each keeps its own (in memory).

    """

    shared: bool

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

    async def get(self, message_id: str) -> ChatMessage | None:
        """Return the message with this id, if the store has it."""

    async def after(self, room_id: int, after: str, limit: int) -> list[ChatMessage] | None:
        """
        Return up to ``limit`` messages of the room that came after ``after``,
        oldest first; None when the store does not know that message.
        """

    async def last_messages(self, room_ids: Sequence[int]) -> list[ChatMessage]:
        """Return the newest message of each of the rooms that has one, in their order."""

    async def check(self) -> str | None:
        """Return None when the store is reachable, else the reason it is not."""
