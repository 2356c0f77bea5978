"""The in-memory store: the newest messages of each room, in arrival order."""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from collections.abc import Sequence

from .messages import ChatMessage, ChatRow

__all__ = ["InMemoryStore"]


@dataclasses.dataclass(slots=True)
class _Room:
    # (position, id, row): atoms only, so the garbage collector leaves them alone.
    messages: deque[tuple[int, str, ChatRow]]
    positions: dict[str, int] = dataclasses.field(default_factory=dict)


class InMemoryStore:
    """
    Keeps the newest ``per_room`` messages of every room.

    Args:
        per_room: How many messages each room keeps; older ones are dropped.

    """

    shared = False  # each process keeps its own

    def __init__(self, per_room: int = 1000) -> None:
        self.per_room = per_room
        self._rooms: dict[int, _Room] = {}
        self._sequence = itertools.count()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def save(self, messages: Sequence[ChatMessage]) -> None:
        for message in messages:
            room = self._rooms.get(message.chat_room_id)
            if room is None:
                room = self._rooms[message.chat_room_id] = _Room(deque())
            if message.id in room.positions:
                continue
            if len(room.messages) >= self.per_room:
                _, dropped, _ = room.messages.popleft()
                del room.positions[dropped]
            position = next(self._sequence)
            room.messages.append((position, message.id, message.row()))
            room.positions[message.id] = position

    async def history(self, room_id: int, *, before: str | None, limit: int) -> list[ChatMessage]:
        room = self._rooms.get(room_id)
        if room is None:
            return []
        if before is None:
            older = list(room.messages)
        elif before in room.positions:
            cursor = room.positions[before]
            older = [item for item in room.messages if item[0] < cursor]
        else:
            # An id this store no longer holds: ObjectIds sort by creation time.
            older = [item for item in room.messages if item[1] < before]
        return [ChatMessage.from_row(row) for _, _, row in older[-limit:]] if limit else []

    async def get(self, message_id: str) -> ChatMessage | None:
        for room in self._rooms.values():
            if message_id in room.positions:
                cursor = room.positions[message_id]
                return next(
                    ChatMessage.from_row(row)
                    for position, _, row in room.messages
                    if position == cursor
                )
        return None

    async def after(self, room_id: int, after: str, limit: int) -> list[ChatMessage] | None:
        room = self._rooms.get(room_id)
        if room is None or after not in room.positions:
            return None
        cursor = room.positions[after]
        rows = [row for position, _, row in room.messages if position > cursor][:limit]
        return [ChatMessage.from_row(row) for row in rows]

    async def last_messages(self, room_ids: Sequence[int]) -> list[ChatMessage]:
        rooms = (self._rooms.get(room_id) for room_id in room_ids)
        return [
            ChatMessage.from_row(room.messages[-1][2])
            for room in rooms
            if room is not None and room.messages
        ]

    async def check(self) -> str | None:
        return None
