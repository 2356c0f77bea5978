"""
Recovery after a reconnect: the messages of a room a client missed.

A SUBSCRIBE to a room may carry ``x-last-message-id``, the last message the
client saw. The missed messages come from the store and, for the newest ones
the persister may not have written yet, from :class:`RecentMessages`, a
bounded buffer fed by this instance's fan-out with the records of the rooms
it has subscribers in. Each is identified by
its bus position, so the seam with live delivery has no gap and no duplicate.
"""

from __future__ import annotations

import dataclasses
from collections import deque

from kafka_bridge import Delivery
from persistence import ChatMessage, InvalidMessage, MessageStore

__all__ = ["MAX_RECOVERED", "RecentMessages", "Recovery", "recover"]

MAX_RECOVERED = 1000  # more missed messages than this: reload the history instead

_Record = tuple[str, int, int, int, bytes]  # id, room, partition, offset, JSON


class RecentMessages:
    """
    The newest messages the fan-out delivered, across rooms, in bus order.

    Each is kept as its bus record, parsed only when a recovery asks for it:
    the fan-out reads no more of a message than its id and room.

    Args:
        capacity: How many messages are kept; the oldest go first.
        max_bytes: How many bytes of JSON are kept; the oldest go first, the
            newest stays even alone over it.

    """

    def __init__(self, capacity: int, max_bytes: int = 16 * 2**20) -> None:
        # (id, room, partition, offset, JSON): atoms only, which the garbage
        # collector stops tracking, so a full buffer adds nothing to its work.
        self._records: deque[_Record] = deque()
        self._by_id: dict[str, _Record] = {}
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._bytes = 0

    def add(self, message_id: str, room_id: int, record: Delivery) -> None:
        """Remember the message ``message_id`` of ``room_id``, read from the bus as ``record``."""
        if self.capacity <= 0:
            return
        size = len(record.value)
        while self._records and (
            len(self._records) >= self.capacity or self._bytes + size > self.max_bytes
        ):
            oldest = self._records.popleft()
            self._by_id.pop(oldest[0], None)
            self._bytes -= len(oldest[4])
        # An exact-size copy: the bytes orjson makes keep their whole buffer
        # (4 KiB at least, eight bytes a character of a long text).
        value = bytes(memoryview(record.value))
        kept = (message_id, room_id, record.partition, record.offset, value)
        self._records.append(kept)
        self._by_id[message_id] = kept
        self._bytes += size

    def get(self, message_id: str) -> ChatMessage | None:
        record = self._by_id.get(message_id)
        return None if record is None else _parsed(record)

    def after(self, room_id: int, offset: int) -> list[tuple[ChatMessage, bytes]]:
        """Return the room's messages past ``offset``, with their JSON, in bus order."""
        found = []
        for record in self._records:
            if record[1] == room_id and record[3] > offset:
                message = _parsed(record)
                if message is not None:
                    found.append((message, record[4]))
        return found


def _parsed(record: _Record) -> ChatMessage | None:
    _, _, partition, offset, value = record
    try:
        return ChatMessage.from_json(value, partition=partition, offset=offset)
    except InvalidMessage:
        return None  # in the fan-out's shape, yet not a message: nothing to recover


@dataclasses.dataclass(frozen=True, slots=True)
class Recovery:
    """
    What a reconnecting subscriber missed.

    Attributes:
        recovered: False when the last id is unknown or too much was missed:
            the client should reload the history.
        messages: The missed messages and their JSON, oldest first.
        floor: The bus offset up to which the subscriber has everything.

    """

    recovered: bool
    messages: list[tuple[ChatMessage, bytes]]
    floor: int


async def recover(
    store: MessageStore, recent: RecentMessages, room_id: int, last_id: str
) -> Recovery:
    """Collect the messages of ``room_id`` after ``last_id``, from store and buffer."""
    anchor = recent.get(last_id) or await store.get(last_id)
    if anchor is None or anchor.chat_room_id != room_id:
        return Recovery(recovered=False, messages=[], floor=-1)
    # The store may not have the anchor yet (the persister lags): the buffer has.
    stored = await store.after(room_id, last_id, MAX_RECOVERED + 1) or []
    anchor_offset = -1 if anchor.offset is None else anchor.offset
    missed = {message.id: (message, message.to_json()) for message in stored}
    for message, raw in recent.after(room_id, anchor_offset):
        missed.setdefault(message.id, (message, raw))
    if len(missed) > MAX_RECOVERED:
        return Recovery(recovered=False, messages=[], floor=-1)
    ordered = sorted(missed.values(), key=lambda item: _order(item[0]))
    offsets = [message.offset for message, _ in ordered if message.offset is not None]
    return Recovery(recovered=True, messages=ordered, floor=max([anchor_offset, *offsets]))


def _order(message: ChatMessage) -> tuple[bool, int]:
    # Seed documents have no offset and come first, in the store's order.
    return (message.offset is not None, message.offset or 0)
