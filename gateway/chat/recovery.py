"""
Recovery after a reconnect: the messages of a room a client missed.

A SUBSCRIBE to a room may carry ``x-last-message-id``, the last message the
client saw. The missed messages come from the store and, for the newest ones
the persister may not have written yet, from :class:`RecentMessages`, a
bounded buffer fed by this instance's fan-out with the records of the rooms
it has subscribers in. Each is identified by
its bus position, so the seam with live delivery has no gap and no duplicate.

A room lives in one partition, so what was missed is a range of positions:
from the client's last message to where live delivery starts (the fan-out's
position once the subscription is registered). Each source covers a span of
that range: the store from the anchor to where the persister has stored
everything, the buffer from its oldest unbroken record of the partition to
its newest. Every hole between them is read back from the bus's log; a hole
nothing fills makes the recovery fail, never a recovery with a hole.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from kafka_bridge import Delivery, MessageBus
from persistence import ChatMessage, InvalidMessage, MessageStore

__all__ = [
    "MAX_RECOVERED",
    "NOT_RECOVERED",
    "RecentMessages",
    "Recovery",
    "Span",
    "merge",
    "recover",
]

MAX_RECOVERED = 1000  # more missed messages than this: reload the history instead
MAX_LOG_READS = 3  # holes: before the buffer's span, after it, and to the partition's end

_Record = tuple[str, int, int, int, bytes]  # id, room, partition, offset, JSON
Missed = tuple[ChatMessage, bytes]  # a missed message and its JSON
Source = Literal["buffer", "store", "log", "not recovered"]


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
        # Per partition: the fan-out delivered every record from _run to _next - 1.
        self._run: dict[int, int] = {}
        self._next: dict[int, int] = {}
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._bytes = 0

    def add(self, message_id: str, room_id: int, record: Delivery) -> None:
        """Remember the message ``message_id`` of ``room_id``, read from the bus as ``record``."""
        self.passed(record)
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

    def after(self, room_id: int, offset: int) -> list[Missed]:
        """Return the room's messages past ``offset``, with their JSON, in bus order."""
        found = []
        for record in self._records:
            if record[1] == room_id and record[3] > offset:
                message = _parsed(record)
                if message is not None:
                    found.append((message, record[4]))
        return found

    def passed(self, record: Delivery) -> None:
        """Note that the fan-out delivered ``record``, kept or not (not a chat message)."""
        partition, offset = record.partition, record.offset
        if self._next.get(partition) != offset:
            self._run[partition] = offset  # a record not delivered here: the run restarts
        self._next[partition] = offset + 1

    def covered(self, partition: int) -> tuple[int, int] | None:
        """
        Return the offsets ``(first, end)`` of ``partition`` between which the
        buffer holds every message (``end`` is where the fan-out goes on); None
        when the fan-out delivered nothing of that partition yet.
        """
        end = self._next.get(partition)
        if end is None:
            return None
        # What was evicted went first: the partition's oldest record kept starts the rest.
        oldest = next((record[3] for record in self._records if record[2] == partition), end)
        return max(self._run[partition], oldest), end


def _parsed(record: _Record) -> ChatMessage | None:
    _, _, partition, offset, value = record
    try:
        return ChatMessage.from_json(value, partition=partition, offset=offset)
    except InvalidMessage:
        return None  # in the fan-out's shape, yet not a message: nothing to recover


@dataclasses.dataclass(frozen=True, slots=True)
class Span:
    """
    What one source knows of a room's partition.

    Attributes:
        start: First offset covered.
        end: Offset after the last covered.
        messages: Every message of the room at offsets ``start`` to ``end - 1``
            (store spans also the seed's messages, which have no offset).

    """

    start: int
    end: int
    messages: list[Missed]


@dataclasses.dataclass(frozen=True, slots=True)
class Recovery:
    """
    What a reconnecting subscriber missed.

    Attributes:
        recovered: False when the last id is unknown, too much was missed, or
            part of it can no longer be read: the client should reload the history.
        messages: The missed messages and their JSON, oldest first.
        floor: The bus offset up to which the subscriber has everything.
        source: What the recovery needed: ``log`` when the bus's log filled
            a hole, else ``store`` when the store's span did, else ``buffer``.

    """

    recovered: bool
    messages: list[Missed]
    floor: int
    source: Source


NOT_RECOVERED = Recovery(recovered=False, messages=[], floor=-1, source="not recovered")


def merge(after: int, spans: Sequence[Span], live: int) -> list[Missed] | None:
    """
    Return the room's messages after offset ``after``, oldest first, each once,
    when ``spans`` cover every offset from ``after + 1`` to ``live`` (where live
    delivery starts) with no hole; None when they do not.

    Messages past the spans' unbroken reach are left to live delivery.
    """
    reach = _reach(after, spans)
    if reach < live:
        return None
    missed: dict[str, Missed] = {}
    for span in spans:
        for message, raw in span.messages:
            if message.offset is None or after < message.offset < reach:
                missed.setdefault(message.id, (message, raw))
    return sorted(missed.values(), key=lambda item: _order(item[0]))


async def recover(
    store: MessageStore,
    recent: RecentMessages,
    bus: MessageBus,
    stored_before: Callable[[int], Awaitable[int | None]],
    room_id: int,
    last_id: str,
) -> Recovery:
    """
    Collect the messages of ``room_id`` after ``last_id``, from store, buffer and log.

    ``stored_before(partition)`` tells an offset before which the store has
    every record of the partition (None: unknown): where the store's span ends
    when the room has no later message stored.

    Raises:
        StoreError: The store cannot be read.
        LogUnavailable: A hole between store and buffer can no longer be read.

    """
    key = str(room_id)
    partition = bus.partition_of(key)
    anchor = recent.get(last_id) or await store.get(last_id)
    if (
        anchor is None
        or anchor.chat_room_id != room_id
        or anchor.partition not in (None, partition)
    ):
        return NOT_RECOVERED
    after = -1 if anchor.offset is None else anchor.offset
    persisted = await stored_before(partition)  # asked first: what it names is in the store now
    # The store may not have the anchor yet (the persister lags): the buffer has.
    stored = await store.after(room_id, last_id, MAX_RECOVERED + 1)
    if stored is not None and len(stored) > MAX_RECOVERED:
        return NOT_RECOVERED
    spans = [_stored(after, stored, persisted), _buffered(recent, partition, room_id, after)]
    # The subscription is registered: what the fan-out hands on from here is live.
    # Not reading the partition (yet), it will start at most at the partition's end now.
    live = bus.fan_out_position(partition)
    for _ in range(MAX_LOG_READS):
        hole = _hole(after, spans, live)
        if hole is None:
            break
        log = await bus.read_log(key, *hole, MAX_RECOVERED + 1)
        if len(log.records) > MAX_RECOVERED:
            return NOT_RECOVERED
        spans.append(Span(hole[0], log.end, _parsed_all(log.records, room_id)))
        if hole[1] is None:
            live = log.end  # read to the partition's end: live starts there at most
    missed = None if live is None else merge(after, spans, live)
    if missed is None or len(missed) > MAX_RECOVERED:
        return NOT_RECOVERED
    offsets = [message.offset for message, _ in missed if message.offset is not None]
    return Recovery(
        recovered=True,
        messages=missed,
        floor=max([after, *offsets]),
        source=_source(after, spans),
    )


def _source(after: int, spans: list[Span]) -> Source:
    """What the recovery needed: the log if it covered anything, else the store if it did."""
    stored, _, *logged = spans
    if any(span.end > span.start for span in logged):
        return "log"
    return "store" if stored.end > after + 1 else "buffer"


def _reach(after: int, spans: Sequence[Span]) -> int:
    """The offset up to which ``spans`` cover everything after ``after`` with no hole."""
    reach = after + 1
    for span in sorted(spans, key=lambda span: span.start):
        if span.start > reach:
            break
        reach = max(reach, span.end)
    return reach


def _hole(after: int, spans: Sequence[Span], live: int | None) -> tuple[int, int | None] | None:
    """
    The first range after ``after`` and before ``live`` (None: the partition's
    end) that no span covers, up to the next span; None when there is none.
    """
    start = _reach(after, spans)
    if live is not None and start >= live:
        return None
    later = [span.start for span in spans if span.start > start and span.end > span.start]
    ends = later if live is None else [*later, live]
    return start, min(ends, default=None)


def _stored(after: int, stored: list[ChatMessage] | None, persisted: int | None) -> Span:
    """
    The store's span: from the anchor to its newest message of the room, or
    to where the persister has stored everything if that is further.
    """
    if stored is None:  # the store does not know the anchor: it tells nothing
        return Span(after + 1, after + 1, [])
    offsets = [message.offset for message in stored if message.offset is not None]
    end = max([after, *offsets]) + 1
    if persisted is not None:
        end = max(end, persisted)
    return Span(after + 1, end, [(message, message.to_json()) for message in stored])


def _buffered(recent: RecentMessages, partition: int, room_id: int, after: int) -> Span:
    covered = recent.covered(partition)
    if covered is None:
        return Span(after + 1, after + 1, [])
    return Span(covered[0], covered[1], recent.after(room_id, after))


def _parsed_all(records: list[Delivery], room_id: int) -> list[Missed]:
    """The room's messages among ``records`` read from the log, with their JSON."""
    found = []
    for record in records:
        message = _parsed((record.key, room_id, record.partition, record.offset, record.value))
        if message is not None and message.chat_room_id == room_id:
            found.append((message, record.value))
    return found


def _order(message: ChatMessage) -> tuple[bool, int]:
    # Seed documents have no offset and come first, in the store's order.
    return (message.offset is not None, message.offset or 0)
