"""
The pieces of recovery, against reference models.

A room's partition is modelled as a row of positions, each a message of the
room or a record of another room. Sources (store, log, buffer) know spans of
it; live delivery goes on from a position. :func:`merge` must give the room's
messages after the anchor exactly once and in order, seamlessly followed by
the live ones, or refuse when a position between anchor and live is unknown.
"""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from gateway.chat.recovery import (
    NOT_RECOVERED,
    Missed,
    RecentMessages,
    Recovery,
    Span,
    merge,
    recover,
)
from kafka_bridge import Delivery, LogRange, LogUnavailable
from persistence import InMemoryStore
from tests.support.messages import placed

ROOM = 7
OTHER = 8


def missed(offset: int) -> Missed:
    found = placed(offset, ROOM)
    return found, found.to_json()


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[bool], int, list[tuple[int, int]], int]:
    """A partition (True: the room's message), the anchor, spans known, where live starts."""
    partition = draw(st.lists(st.booleans(), min_size=1, max_size=40))
    size = len(partition)
    anchor = draw(st.integers(-1, size - 1))
    live = draw(st.integers(anchor + 1, size))
    bounds = st.tuples(st.integers(0, size), st.integers(0, size)).map(sorted)
    spans = draw(st.lists(bounds.map(tuple), max_size=5))
    return partition, anchor, spans, live


@given(scenarios())
def test_merge_is_the_gap_free_union_or_nothing(
    scenario: tuple[list[bool], int, list[tuple[int, int]], int],
) -> None:
    partition, anchor, bounds, live = scenario
    room = [offset for offset, ours in enumerate(partition) if ours]
    spans = [
        Span(start, end, [missed(offset) for offset in room if start <= offset < end])
        for start, end in bounds
    ]
    result = merge(anchor, spans, live)

    known = {offset for start, end in bounds for offset in range(start, end)}
    hole = any(offset not in known for offset in range(anchor + 1, live))
    if hole:
        assert result is None
        return
    assert result is not None
    recovered = [found.offset for found, _ in result]
    assert len({found.id for found, _ in result}) == len(result)
    floor = max([anchor, *(offset for offset in recovered if offset is not None)])
    live_part = [offset for offset in room if offset >= live and offset > floor]
    assert recovered + live_part == [offset for offset in room if offset > anchor]
    assert all(raw == found.to_json() for found, raw in result)


@st.composite
def fan_outs(draw: st.DrawFn) -> tuple[int, list[tuple[int, int, bool]]]:
    """A buffer capacity and the records a fan-out delivers: partition, offset, the room's."""
    capacity = draw(st.integers(0, 8))
    records = []
    ends = [0, 0]
    for _ in range(draw(st.integers(0, 40))):
        partition = draw(st.integers(0, 1))
        ends[partition] += draw(st.sampled_from([1, 1, 1, 2, 5]))  # some records not seen here
        records.append((partition, ends[partition], draw(st.booleans())))
    return capacity, records


@given(fan_outs())
def test_buffer_span_holds_every_record_it_claims(
    fan_out: tuple[int, list[tuple[int, int, bool]]],
) -> None:
    capacity, records = fan_out
    recent = RecentMessages(capacity)
    for partition, offset, ours in records:
        delivery = Delivery(str(ROOM), b"", partition, offset)
        room = ROOM if ours else OTHER
        recent.add(placed(offset * 2 + partition, room).id, room, delivery)
    for partition in (0, 1):
        seen = [offset for p, offset, _ in records if p == partition]
        covered = recent.covered(partition)
        if not seen:
            assert covered is None
            continue
        assert covered is not None
        first, end = covered
        assert end == seen[-1] + 1  # live delivery goes on after the newest
        # Every offset of the span was delivered here and is still kept.
        assert all(offset in seen for offset in range(first, end))
        kept = [(p, offset) for p, offset, _ in records[-capacity:]] if capacity else []
        assert all((partition, offset) in kept for offset in range(first, end))


class LogBus:
    """A one-partition bus whose log is ``records``, retained from ``first``."""

    def __init__(self, records: list[Delivery], first: int) -> None:
        self.records = records
        self.first = first

    def partition_of(self, key: str) -> int:
        return 0

    def fan_out_position(self, partition: int) -> int:
        return len(self.records)  # the fan-out handed on (or skipped) everything

    async def read_log(self, key: str, start: int, end: int | None, limit: int) -> LogRange:
        if start < self.first:
            raise LogUnavailable("not retained")
        end = len(self.records) if end is None else end
        found = [r for r in self.records[start:end] if r.key == key][:limit]
        return LogRange(found, end if len(found) < limit else found[-1].offset + 1)


@st.composite
def recoveries(draw: st.DrawFn) -> tuple[list[bool], int, int, list[bool], int, int]:
    """
    A partition (True: the room's), the anchor (a room message), how far the
    store has everything, which records the fan-out handed on, the buffer's
    capacity, and where the log begins.
    """
    partition = draw(st.lists(st.booleans(), min_size=1, max_size=30))
    room = [offset for offset, ours in enumerate(partition) if ours]
    if not room:
        partition[0] = True
        room = [0]
    anchor = draw(st.sampled_from(room))
    stored = draw(st.integers(anchor + 1, len(partition)))
    handed = draw(st.lists(st.booleans(), min_size=len(partition), max_size=len(partition)))
    return partition, anchor, stored, handed, draw(st.integers(0, 10)), draw(st.integers(0, 30))


@given(recoveries())
def test_recover_gives_everything_after_the_anchor_or_refuses(
    scenario: tuple[list[bool], int, int, list[bool], int, int],
) -> None:
    partition, anchor, stored_up_to, handed, capacity, log_start = scenario
    messages = [placed(offset, ROOM if ours else OTHER) for offset, ours in enumerate(partition)]
    records = [
        Delivery(str(m.chat_room_id), m.to_json(), 0, offset) for offset, m in enumerate(messages)
    ]
    store = InMemoryStore()
    recent = RecentMessages(capacity)
    for offset, record in enumerate(records):
        if handed[offset]:  # else skipped by the fan-out (a key nobody here watched)
            recent.add(messages[offset].id, messages[offset].chat_room_id, record)

    async def stored_before(partition: int) -> int:
        return stored_up_to

    async def run() -> Recovery:
        await store.save([m for m in messages[:stored_up_to] if m.chat_room_id == ROOM])
        bus = LogBus(records, log_start)
        try:
            return await recover(store, recent, bus, stored_before, ROOM, messages[anchor].id)  # type: ignore[arg-type]
        except LogUnavailable:
            return NOT_RECOVERED

    recovery = asyncio.run(run())
    truth = [offset for offset, ours in enumerate(partition) if ours and offset > anchor]
    if recovery.recovered:
        assert [m.offset for m, _ in recovery.messages] == truth
        assert recovery.floor == max([anchor, *truth])
    else:
        assert log_start > stored_up_to, "a log that holds the hole always fills it"
