"""
The connection log: when each member last connected or disconnected.

The backend's unread badges compare a message's ``createAt`` with the
member's last connection. One record per member: the latest connect or
disconnect of any of its sessions ("seen until"), and that session's id;
and the rooms the member has subscribed to (the rooms ``last/message``
answers for by default), up to :data:`MAX_MEMBER_ROOMS`: rooms joined after
that many are not remembered.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

__all__ = ["MAX_MEMBER_ROOMS", "ConnectionLog", "InMemoryConnectionLog", "LastConnect"]

MAX_MEMBER_ROOMS = 1000  # rooms remembered per member


@dataclasses.dataclass(frozen=True, slots=True)
class LastConnect:
    """
    A member's latest connect or disconnect.

    Attributes:
        member_id: The member.
        session_id: The STOMP session of that event.
        at_ns: When, in nanoseconds since the epoch.

    """

    member_id: int
    session_id: str
    at_ns: int


class ConnectionLog(Protocol):
    """Keeps each member's :class:`LastConnect`."""

    async def start(self) -> None:
        """Start writing behind."""

    async def close(self) -> None:
        """Write what is pending, then stop."""

    def record(self, event: LastConnect) -> None:
        """Note a connect or disconnect; returns at once, written behind."""

    async def last_connect(self, member_id: int) -> LastConnect | None:
        """Return the member's latest event, if any was recorded."""

    def joined(self, member_id: int, room_id: int) -> None:
        """Note that the member subscribed to the room; returns at once, written behind."""

    async def rooms(self, member_id: int) -> list[int]:
        """Return the rooms the member has subscribed to, ascending."""


class InMemoryConnectionLog:
    """The events of this instance, in memory."""

    def __init__(self) -> None:
        self._latest: dict[int, LastConnect] = {}
        self._rooms: dict[int, set[int]] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def record(self, event: LastConnect) -> None:
        self._latest[event.member_id] = event

    async def last_connect(self, member_id: int) -> LastConnect | None:
        return self._latest.get(member_id)

    def joined(self, member_id: int, room_id: int) -> None:
        rooms = self._rooms.setdefault(member_id, set())
        if len(rooms) < MAX_MEMBER_ROOMS:
            rooms.add(room_id)

    async def rooms(self, member_id: int) -> list[int]:
        return sorted(self._rooms.get(member_id, ()))
