"""The in-memory store: the newest messages of each room, in arrival order."""

from __future__ import annotations

import dataclasses
import itertools
import sys
from collections import deque
from collections.abc import Sequence

from .messages import ChatMessage, ChatRow

__all__ = ["InMemoryStore"]


@dataclasses.dataclass(slots=True)
class _Room:
    # (position, id, row): atoms only, so the garbage collector leaves them alone.
    messages: deque[tuple[int, str, ChatRow]]
    positions: dict[str, int] = dataclasses.field(default_factory=dict)
    size: int = 0  # bytes of the messages' strings, see _size


class InMemoryStore:
    """
    Keeps the newest messages of every room, at most ``per_room`` of them
    and ``bytes_per_room`` bytes of their strings; older ones are dropped,
    the newest is always kept.

    Args:
        per_room: How many messages each room keeps.
        bytes_per_room: How many bytes (of :func:`_size`) each room keeps.

    """

    shared = False  # each process keeps its own

    def __init__(self, per_room: int = 1000, bytes_per_room: int = 4 * 2**20) -> None:
        self.per_room = per_room
        self.bytes_per_room = bytes_per_room
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
            row = message.row()
            size = _size(row)
            while room.messages and (
                len(room.messages) >= self.per_room or room.size + size > self.bytes_per_room
            ):
                _, dropped, old = room.messages.popleft()
                del room.positions[dropped]
                room.size -= _size(old)
            position = next(self._sequence)
            room.messages.append((position, message.id, row))
            room.positions[message.id] = position
            room.size += size

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


def _size(row: ChatRow) -> int:
    """The memory a row's strings take, in bytes: what grows with what clients send."""
    return sum(sys.getsizeof(field) for field in row if isinstance(field, str))
