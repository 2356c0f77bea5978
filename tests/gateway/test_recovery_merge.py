"""
The pieces of recovery, against reference models.

A room's partition is modelled as a row of positions, each a message of the
room or a record of another room. Sources (store, log, buffer) know spans of
it; live delivery goes on from a position. :func:`merge` must give the room's
messages after the anchor exactly once and in order, seamlessly followed by
the live ones, or refuse when a position between anchor and live is unknown.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.recovery import Missed, RecentMessages, Span, merge
from kafka_bridge import Delivery

from .test_recent import placed

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
