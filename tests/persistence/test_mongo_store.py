"""
:class:`persistence.mongo.MongoStore` against a real MongoDB-wire server.

Documents are checked with a raw :class:`pymongo.AsyncMongoClient`: the
gateway must write the seed's shape (collection ``chat_messages``) and read
what the seed wrote.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection

from persistence import ChatMessage, MessageStore, StoreError
from persistence.mongo import MongoStore
from tests.support.servers import free_port

mongo = pytest.mark.mongo

SEED_FIELDS = {
    "_id",
    "chat_room_id",
    "user_id",
    "nickname",
    "message",
    "file_id",
    "file_name",
    "create_at",
}
GATEWAY_FIELDS = SEED_FIELDS | {"partition", "offset"}
ISO_LOCAL_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?")

# ObjectIds whose time part grows by one second per id, so _id order is creation order.
_seconds = itertools.count(0x6727A1F0)
_offsets = itertools.count(1_000)


def new_id() -> str:
    return f"{next(_seconds):08x}{os.urandom(8).hex()}"


def message(
    text: str | None, *, room: int = 1, member: int = 7, offset: int | None = None, **fields: Any
) -> ChatMessage:
    """A message as the persister saves it: with its bus partition and offset."""
    return ChatMessage(
        id=new_id(),
        chat_room_id=room,
        member_id=member,
        nickname="henhen",
        message=text,
        create_at="2024-11-03T18:23:45.123456789",
        partition=0,
        offset=next(_offsets) if offset is None else offset,
        **fields,
    )


def messages(count: int, *, room: int = 1, prefix: str = "m") -> list[ChatMessage]:
    return [message(f"{prefix}{n}", room=room) for n in range(count)]


def texts(found: list[ChatMessage]) -> list[str | None]:
    return [m.message for m in found]


def ids(found: list[ChatMessage]) -> list[str]:
    return [m.id for m in found]


def seed_document(text: str | None, *, room: int = 1, **fields: Any) -> dict[str, Any]:
    """
    A document as the Spring seed wrote it: no partition, no offset, null
    properties left out, ``create_at`` a BSON date, ``_class`` added.
    """
    document: dict[str, Any] = {
        "_id": ObjectId(new_id()),
        "chat_room_id": room,
        "user_id": 3,
        "nickname": "seed",
        "create_at": datetime.datetime(2024, 11, 3, 9, 23, 45, 123000, tzinfo=datetime.UTC),
        "_class": "com.example.chat.domain.ChatMessage",
    }
    if text is not None:
        document["message"] = text
    document.update(fields)
    return document


@pytest.fixture
async def store(mongo_db_uri: str) -> AsyncIterator[MongoStore]:
    store = MongoStore(mongo_db_uri)
    await store.start()
    yield store
    await store.close()


async def all_history(store: MessageStore, room: int, limit: int) -> list[list[ChatMessage]]:
    """Every page of the room's history, newest page first, paging with ``before``."""
    pages: list[list[ChatMessage]] = []
    before: str | None = None
    while True:
        page = await store.history(room, before=before, limit=limit)
        if not page:
            return pages
        assert len(page) <= limit
        pages.append(page)
        before = page[0].id


# start


@mongo
async def test_is_a_message_store(store: MongoStore) -> None:
    typed: MessageStore = store
    assert await typed.check() is None


@mongo
async def test_start_creates_the_room_order_index(
    store: MongoStore, raw: AsyncCollection[dict[str, Any]]
) -> None:
    deadline = time.monotonic() + 10
    while True:
        indexes = {index["name"]: index async for index in await raw.list_indexes()}
        if "room_order" in indexes or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert "room_order" in indexes, indexes
    assert list(indexes["room_order"]["key"].items()) == [
        ("chat_room_id", 1),
        ("offset", 1),
        ("_id", 1),
    ]


# save


@mongo
async def test_save_writes_the_seed_fields_plus_partition_and_offset(
    store: MongoStore, raw: AsyncCollection[dict[str, Any]]
) -> None:
    text = message("안녕하세요", room=4, member=7)
    file = message(None, room=4, member=8, file_id=12, file_name="cat.png")
    named_file = message(None, room=4, file_id="f-9", file_name="a b.txt")
    await store.save([text, file, named_file])

    documents = await raw.find({}).sort("_id", 1).to_list()
    for document in documents:
        assert set(document) == GATEWAY_FIELDS, document
        assert isinstance(document["_id"], ObjectId)
    assert documents == [
        {
            "_id": ObjectId(m.id),
            "chat_room_id": 4,
            "user_id": m.member_id,
            "nickname": "henhen",
            "message": m.message,
            "file_id": m.file_id,
            "file_name": m.file_name,
            "create_at": "2024-11-03T18:23:45.123456789",
            "partition": 0,
            "offset": m.offset,
        }
        for m in (text, file, named_file)
    ]
    # And they read back as they were saved.
    assert await store.history(4, before=None, limit=10) == [text, file, named_file]


@mongo
async def test_saving_again_keeps_one_copy(
    store: MongoStore, raw: AsyncCollection[dict[str, Any]]
) -> None:
    old = messages(5, prefix="old")
    await store.save(old)
    await store.save(old)
    new = messages(3, prefix="new")
    # A replayed batch: old and new messages mixed, out of order.
    await store.save([old[3], new[0], old[0], new[1], old[4], new[2]])
    await store.save([])

    assert await raw.count_documents({}) == 8
    assert len(await raw.distinct("_id")) == 8
    assert await store.history(1, before=None, limit=100) == old + new


# history


@mongo
async def test_history_is_oldest_first_and_the_newest_limit(store: MongoStore) -> None:
    room1 = messages(10)
    room2 = messages(4, room=2, prefix="two")
    await store.save(room1[:5] + room2 + room1[5:])
    assert await store.history(1, before=None, limit=100) == room1
    assert await store.history(1, before=None, limit=3) == room1[-3:]
    assert await store.history(2, before=None, limit=100) == room2
    assert await store.history(3, before=None, limit=100) == []
    assert await store.history(1, before=room1[4].id, limit=2) == room1[2:4]


@mongo
async def test_history_pages_with_before_return_each_message_once_in_order(
    store: MongoStore,
) -> None:
    saved = messages(250)
    for start in range(0, len(saved), 60):  # saved in batches, as the persister does
        await store.save(saved[start : start + 60])
    pages = await all_history(store, 1, limit=100)
    assert [len(page) for page in pages] == [100, 100, 50]
    listed = [m for page in reversed(pages) for m in page]
    assert ids(listed) == ids(saved)
    assert listed == saved
    print(f"paged {len(listed)} messages in {len(pages)} pages")


@mongo
async def test_history_before_an_unknown_id_falls_back_to_object_id_time(
    store: MongoStore,
) -> None:
    saved = messages(6)
    await store.save(saved)
    # An id this database never had, created between saved[2] and saved[3].
    between = saved[2].id[:8] + "f" * 16
    assert saved[2].id < between < saved[3].id
    assert await store.history(1, before=between, limit=100) == saved[:3]
    assert await store.history(1, before=between, limit=2) == saved[1:3]
    assert await store.history(1, before="0" * 24, limit=100) == []
    assert await store.history(1, before="f" * 24, limit=100) == saved


@mongo
async def test_seed_documents_sort_before_the_gateways_and_read_back(
    store: MongoStore, raw: AsyncCollection[dict[str, Any]]
) -> None:
    gateway = messages(3, prefix="gw")
    await store.save(gateway)
    # Created after the gateway's in ObjectId time: order by offset must still put them first.
    seed = [
        seed_document("seed0"),
        seed_document(None, file_id=5, file_name="photo.jpg"),
        seed_document("seed2"),
    ]
    await raw.insert_many([dict(document) for document in seed])
    seed_ids = [str(document["_id"]) for document in seed]

    everything = await store.history(1, before=None, limit=100)
    assert ids(everything) == seed_ids + ids(gateway)
    assert texts(everything) == ["seed0", None, "seed2", "gw0", "gw1", "gw2"]
    first, file, _ = everything[:3]
    assert (first.chat_room_id, first.member_id, first.nickname) == (1, 3, "seed")
    assert (first.file_id, first.file_name, first.partition, first.offset) == (None,) * 4
    assert (file.message, file.file_id, file.file_name) == (None, 5, "photo.jpg")
    assert file.to_dict()["memberId"] == 3

    # Paging across the seam, two at a time: each message once, in order.
    pages = await all_history(store, 1, limit=2)
    assert [ids(page) for page in reversed(pages)] == [
        seed_ids[:2],
        [seed_ids[2], gateway[0].id],
        ids(gateway[1:]),
    ]
    assert ids(await store.history(1, before=seed_ids[2], limit=100)) == seed_ids[:2]
    assert ids(await store.history(1, before=gateway[0].id, limit=100)) == seed_ids

    # after() crosses the seam too.
    assert ids(await store.after(1, seed_ids[0], 100) or []) == seed_ids[1:] + ids(gateway)
    assert ids(await store.after(1, seed_ids[2], 1) or []) == [gateway[0].id]


@mongo
async def test_seed_create_at_date_reads_back_as_a_local_date_time(
    store: MongoStore, raw: AsyncCollection[dict[str, Any]]
) -> None:
    await raw.insert_one(seed_document("seed"))
    (found,) = await store.history(1, before=None, limit=10)
    assert ISO_LOCAL_DATE_TIME.fullmatch(found.create_at), found.create_at
    assert found.create_at.endswith(":23:45.123")


# after


@mongo
async def test_after_returns_the_later_messages_in_order(store: MongoStore) -> None:
    saved = messages(20)
    other_room = messages(3, room=2, prefix="two")
    await store.save(saved[:10] + other_room + saved[10:])
    assert await store.after(1, saved[4].id, 100) == saved[5:]
    assert await store.after(1, saved[4].id, 3) == saved[5:8]
    assert await store.after(1, saved[0].id, 1) == saved[1:2]
    assert await store.after(1, saved[-1].id, 100) == []
    assert await store.after(2, other_room[0].id, 100) == other_room[1:]


@mongo
async def test_after_an_unknown_id_is_none(store: MongoStore) -> None:
    saved = messages(3)
    other_room = messages(1, room=2)
    await store.save(saved + other_room)
    assert await store.after(1, str(ObjectId()), 100) is None
    assert await store.after(1, other_room[0].id, 100) is None  # not a message of room 1
    assert await store.after(5, saved[0].id, 100) is None


# check and errors


@mongo
async def test_check_is_none_when_the_server_is_up(store: MongoStore) -> None:
    assert await store.check() is None


async def test_a_stopped_server_fails_save_and_check() -> None:
    store = MongoStore(f"mongodb://127.0.0.1:{free_port()}/test_down", timeout=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError):
            await store.save(messages(2))
        reason = await store.check()
        elapsed = time.monotonic() - started
    finally:
        await store.close()
    assert isinstance(reason, str)
    assert reason, reason
    assert elapsed < 5, f"took {elapsed:.1f}s with timeout=0.5"
    print(f"unreachable: {reason[:120]!r} after {elapsed:.2f}s")


async def test_close_returns_promptly_while_the_server_is_down() -> None:
    for _attempt in range(5):
        store = MongoStore(f"mongodb://127.0.0.1:{free_port()}/test_down", timeout=0.5)
        await store.start()  # the index task retries in the background
        with pytest.raises(StoreError):
            await store.save(messages(1))
        assert await store.check() is not None
        try:
            await asyncio.wait_for(store.close(), 5)
        except TimeoutError:
            # Clean up what close() left behind (the test's loop ends with the test):
            # wait_for cancelled close(), hence the index task again; close the client.
            await asyncio.wait_for(store._client.close(), 5)
            raise
