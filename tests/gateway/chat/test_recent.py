"""Unit tests for :class:`gateway.chat.recovery.RecentMessages`."""

from __future__ import annotations

import dataclasses
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from gateway.chat.recovery import RecentMessages
from kafka_bridge import Delivery
from persistence import ChatMessage
from tests.support.messages import placed
from tests.support.tracking import tracked_objects


def add(recent: RecentMessages, message: ChatMessage) -> None:
    assert message.offset is not None
    record = Delivery(
        str(message.chat_room_id), message.to_json(), partition=0, offset=message.offset
    )
    recent.add(message.id, message.chat_room_id, record)


def test_after_gives_the_room_past_an_offset_in_order() -> None:
    recent = RecentMessages(10)
    for offset in range(6):
        add(recent, placed(offset, room=1 + offset % 2))
    assert [m.offset for m, _ in recent.after(1, 0)] == [2, 4]
    assert all(raw == m.to_json() for m, raw in recent.after(2, -1))
    assert recent.get(placed(3).id) == placed(3, room=2)


def test_the_oldest_go_first() -> None:
    recent = RecentMessages(3)
    for offset in range(5):
        add(recent, placed(offset))
    assert recent.get(placed(1).id) is None
    assert [m.offset for m, _ in recent.after(1, -1)] == [2, 3, 4]


def test_kept_messages_add_no_work_for_the_garbage_collector() -> None:
    recent = RecentMessages(10_000)
    before = tracked_objects()
    for offset in range(5000):
        add(recent, placed(offset))
    assert tracked_objects() - before < 100


@given(st.lists(st.integers(0, 400), max_size=50), st.integers(1, 10), st.integers(1, 2000))
def test_matches_a_model_bounded_by_count_and_bytes(
    lengths: list[int], capacity: int, max_bytes: int
) -> None:
    recent = RecentMessages(capacity, max_bytes)
    kept: list[ChatMessage] = []
    for offset, length in enumerate(lengths):
        message = dataclasses.replace(placed(offset), message="x" * length)
        add(recent, message)
        kept.append(message)
        # The newest stays; older ones go while over either bound.
        while len(kept) > 1 and (
            len(kept) > capacity or sum(len(m.to_json()) for m in kept) > max_bytes
        ):
            kept.pop(0)
    assert [m for m, _ in recent.after(1, -1)] == kept


def test_kept_records_take_about_their_length() -> None:
    # The in-memory bus hands over the bytes orjson made, whose buffer is much larger.
    recent = RecentMessages(10_000)
    messages = [placed(offset) for offset in range(2000)]
    tracemalloc.start()
    try:
        for message in messages:
            add(recent, message)
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    length = len(messages[0].to_json())
    assert kept < 2000 * (length + 400)  # the JSON, its tuple and index entries
