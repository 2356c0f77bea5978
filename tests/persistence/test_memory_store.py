"""Unit tests for :class:`persistence.InMemoryStore`."""

from __future__ import annotations

import itertools
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persistence import ChatMessage, InMemoryStore, MessageStore
from tests.support.tracking import tracked_objects

_ids = itertools.count(0x6727A1F0 << 64)


def message(room: int = 1, text: str = "m", object_id: str | None = None) -> ChatMessage:
    return ChatMessage(
        id=object_id or f"{next(_ids):024x}",
        chat_room_id=room,
        member_id=1,
        nickname="n",
        message=text,
        create_at="2024-01-01T00:00:00",
    )


def texts(messages: list[ChatMessage]) -> list[str | None]:
    return [m.message for m in messages]


async def test_is_a_message_store() -> None:
    store: MessageStore = InMemoryStore()
    await store.start()
    await store.close()


async def test_unknown_room_is_empty() -> None:
    store = InMemoryStore()
    assert await store.history(1, before=None, limit=10) == []
    assert await store.history(1, before="a" * 24, limit=10) == []


async def test_history_is_oldest_first_and_newest_limit() -> None:
    store = InMemoryStore()
    await store.save([message(text=str(n)) for n in range(10)])
    assert texts(await store.history(1, before=None, limit=100)) == [str(n) for n in range(10)]
    assert texts(await store.history(1, before=None, limit=3)) == ["7", "8", "9"]
    assert await store.history(1, before=None, limit=0) == []


async def test_rooms_are_separate() -> None:
    store = InMemoryStore()
    await store.save(
        [message(room=1, text="a"), message(room=2, text="b"), message(room=1, text="c")]
    )
    assert texts(await store.history(1, before=None, limit=10)) == ["a", "c"]
    assert texts(await store.history(2, before=None, limit=10)) == ["b"]


async def test_before_a_known_id() -> None:
    store = InMemoryStore()
    saved = [message(text=str(n)) for n in range(10)]
    await store.save(saved)
    assert texts(await store.history(1, before=saved[5].id, limit=100)) == ["0", "1", "2", "3", "4"]
    assert texts(await store.history(1, before=saved[5].id, limit=2)) == ["3", "4"]
    assert await store.history(1, before=saved[0].id, limit=100) == []


async def test_before_uses_arrival_order_for_known_ids() -> None:
    # Arrival order wins over id order for ids the store holds.
    store = InMemoryStore()
    await store.save(
        [message(text="late-id", object_id="f" * 24), message(text="early-id", object_id="0" * 24)]
    )
    assert texts(await store.history(1, before="0" * 24, limit=10)) == ["late-id"]


async def test_before_an_unknown_id_compares_ids() -> None:
    store = InMemoryStore()
    ids = ["1" * 24, "3" * 24, "5" * 24]
    await store.save([message(text=object_id[0], object_id=object_id) for object_id in ids])
    assert texts(await store.history(1, before="4" * 24, limit=10)) == ["1", "3"]
    assert texts(await store.history(1, before="0" * 24, limit=10)) == []
    assert texts(await store.history(1, before="f" * 24, limit=2)) == ["3", "5"]


async def test_saving_twice_keeps_one_copy() -> None:
    store = InMemoryStore()
    first = message(text="first")
    await store.save([first, first])
    await store.save([first])
    assert await store.history(1, before=None, limit=10) == [first]


async def test_per_room_bound_drops_the_oldest() -> None:
    store = InMemoryStore(per_room=3)
    saved = [message(text=str(n)) for n in range(5)]
    await store.save(saved[:2])
    await store.save(saved[2:])
    await store.save([message(room=2, text="other")])
    assert texts(await store.history(1, before=None, limit=10)) == ["2", "3", "4"]
    assert texts(await store.history(2, before=None, limit=10)) == ["other"]
    # A dropped message can be saved again: it is new to the store.
    await store.save([saved[0]])
    assert texts(await store.history(1, before=None, limit=10)) == ["3", "4", "0"]
    # The cursor of a dropped message still pages by id.
    assert texts(await store.history(1, before=saved[1].id, limit=10)) == ["0"]


@pytest.mark.parametrize("limit", [1, 7, 10, 11])
async def test_paging_sees_every_message_once(limit: int) -> None:
    store = InMemoryStore()
    saved = [message(text=str(n)) for n in range(23)]
    await store.save(saved)
    pages: list[list[ChatMessage]] = []
    before = None
    while page := await store.history(1, before=before, limit=limit):
        assert len(page) <= limit
        pages.append(page)
        before = page[0].id
    assert [m for page in reversed(pages) for m in page] == saved


@given(
    st.lists(st.tuples(st.integers(1, 3), st.integers(0, 30)), max_size=60),
    st.integers(1, 5),
    st.integers(0, 10),
)
async def test_matches_a_model(saves: list[tuple[int, int]], per_room: int, limit: int) -> None:
    store = InMemoryStore(per_room=per_room)
    model: dict[int, list[ChatMessage]] = {}
    for room, n in saves:
        candidate = message(room=room, text=str(n), object_id=f"{room:02x}{n:022x}")
        await store.save([candidate])
        kept = model.setdefault(room, [])
        if candidate not in kept:
            if len(kept) >= per_room:
                kept.pop(0)
            kept.append(candidate)
    for room in (1, 2, 3):
        expected = model.get(room, [])
        assert await store.history(room, before=None, limit=limit) == (
            expected[-limit:] if limit else []
        )


async def test_kept_messages_add_no_work_for_the_garbage_collector() -> None:
    # A store holding many messages must not lengthen every full collection.
    store = InMemoryStore(per_room=10_000)
    await store.save([message(room=1)])
    before = tracked_objects()
    await store.save([message(room=1) for _ in range(5000)])
    assert tracked_objects() - before < 100
    assert len(await store.history(1, before=None, limit=10_000)) == 5001


def _strings_size(kept: ChatMessage) -> int:
    """The model's measure of a message: the memory of its strings."""
    return sum(sys.getsizeof(s) for s in kept.row() if isinstance(s, str))


@given(
    st.lists(st.tuples(st.integers(1, 2), st.integers(0, 3000)), max_size=40),
    st.integers(1, 8),
    st.integers(1, 20_000),
)
async def test_matches_a_model_bounded_by_bytes(
    saves: list[tuple[int, int]], per_room: int, bytes_per_room: int
) -> None:
    store = InMemoryStore(per_room=per_room, bytes_per_room=bytes_per_room)
    model: dict[int, list[ChatMessage]] = {}
    for room, length in saves:
        candidate = message(room=room, text="x" * length)
        await store.save([candidate])
        kept = model.setdefault(room, [])
        kept.append(candidate)
        # The newest stays; older ones go while over either bound.
        while len(kept) > 1 and (
            len(kept) > per_room or sum(map(_strings_size, kept)) > bytes_per_room
        ):
            kept.pop(0)
    for room in (1, 2):
        assert await store.history(room, before=None, limit=100) == model.get(room, [])
