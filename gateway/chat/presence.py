"""
Presence on this instance: which identified members are subscribed to which
room, counted over their sessions and subscriptions, so the shared
:class:`~persistence.PresenceStore` hears only of a member's first join and
last leave of a room here; each first join also goes to the
:class:`~persistence.ConnectionLog`, which remembers a member's rooms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable

from persistence import ConnectionLog, PresenceStore

from .routing import Router

__all__ = ["PresenceTracker"]


class PresenceTracker:
    """
    Counts room subscriptions per session and sessions per (room, member).

    Args:
        store: Where joins and leaves go.
        router: Tells which destinations are rooms.
        log: Where the rooms each member joined are remembered.

    """

    def __init__(self, store: PresenceStore, router: Router, *, log: ConnectionLog) -> None:
        self.store = store
        self.router = router
        self.log = log
        self._sessions: dict[Hashable, tuple[int, Counter[int]]] = {}
        self._members: Counter[tuple[int, int]] = Counter()

    def subscribed(self, session: Hashable, member_id: int, destination: str) -> None:
        """The session of ``member_id`` subscribed to ``destination``."""
        room = self.router.room_of(destination)
        if room is None:
            return
        _, rooms = self._sessions.setdefault(session, (member_id, Counter()))
        rooms[room] += 1
        if rooms[room] == 1:
            self._members[room, member_id] += 1
            if self._members[room, member_id] == 1:
                self.store.join(room, member_id)
                self.log.joined(member_id, room)

    def unsubscribed(self, session: Hashable, destination: str) -> None:
        """The session dropped one subscription to ``destination``."""
        room = self.router.room_of(destination)
        entry = self._sessions.get(session)
        if room is None or entry is None or not entry[1][room]:
            return
        member_id, rooms = entry
        rooms[room] -= 1
        if not rooms[room]:
            del rooms[room]
            self._left(room, member_id)

    def closed(self, session: Hashable) -> None:
        """The session ended: it left every room it was in."""
        member_id, rooms = self._sessions.pop(session, (0, Counter()))
        for room in rooms:
            self._left(room, member_id)

    def _left(self, room: int, member_id: int) -> None:
        self._members[room, member_id] -= 1
        if not self._members[room, member_id]:
            del self._members[room, member_id]
            self.store.leave(room, member_id)
