"""
Presence: which members are subscribed to which room, on any instance.

The gateway tells the store when a member's first subscription to a room on
this instance begins (:meth:`PresenceStore.join`) and when its last one ends
(:meth:`PresenceStore.leave`); both return at once and are written behind.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["InMemoryPresence", "PresenceStore"]


class PresenceStore(Protocol):
    """Who is in which room."""

    async def start(self) -> None:
        """Start writing behind (and, when shared, holding this instance's lease)."""

    async def close(self) -> None:
        """Withdraw this instance's members and stop."""

    def join(self, room_id: int, member_id: int) -> None:
        """The member is now subscribed to the room on this instance."""

    def leave(self, room_id: int, member_id: int) -> None:
        """The member is no longer subscribed to the room on this instance."""

    async def members(self, room_id: int) -> list[int]:
        """Return the ids of the members in the room, ascending."""


class InMemoryPresence:
    """The members of this instance only: with the in-memory store it is alone."""

    def __init__(self) -> None:
        self._rooms: dict[int, set[int]] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def join(self, room_id: int, member_id: int) -> None:
        self._rooms.setdefault(room_id, set()).add(member_id)

    def leave(self, room_id: int, member_id: int) -> None:
        members = self._rooms.get(room_id, set())
        members.discard(member_id)
        if not members:
            self._rooms.pop(room_id, None)

    async def members(self, room_id: int) -> list[int]:
        return sorted(self._rooms.get(room_id, ()))
