"""
The connection log in MongoDB's ``websocket`` collection, the seed's shape:
one document per member, ``user_id``, ``session_id`` and ``last_connect``
(a BSON date, as Spring Data stores a ``LocalDateTime``), and ``rooms``, the
ids of the rooms the member has subscribed to (a field the seed never read).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from .batching import WriteLoop
from .connections import MAX_MEMBER_ROOMS, LastConnect
from .mongo import reading

__all__ = ["MongoConnectionLog"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class MongoConnectionLog:
    """
    A :class:`~persistence.connections.ConnectionLog` written behind in batches.

    Events of one member in a batch collapse to the latest; a stored event
    is replaced only by a later one, so instances writing the same member in
    any order agree (the unique index on ``user_id`` turns the upsert of an
    older event into a duplicate key, ignored). One update per member: FerretDB
    answers a bulk write with such an error in a shape PyMongo cannot read.
    Rooms joined are added to the document the member's connect wrote (in the
    same flush or an earlier one), while it lists fewer than
    :data:`~persistence.connections.MAX_MEMBER_ROOMS`.
    """

    def __init__(self, database: AsyncDatabase[dict[str, Any]], collection: str = "websocket"):
        self._collection = database[collection]
        self._pending: dict[int, LastConnect] = {}
        self._joined: dict[int, set[int]] = {}
        self._loop = WriteLoop(self._flush, "connection-log")
        self._indexed = False

    async def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.stop()

    def record(self, event: LastConnect) -> None:
        self._pending[event.member_id] = event
        self._loop.poke()

    async def last_connect(self, member_id: int) -> LastConnect | None:
        async with reading():
            document = await self._collection.find_one(
                {"user_id": member_id}, sort=[("last_connect", -1)]
            )
        if document is None or not isinstance(document.get("last_connect"), datetime.datetime):
            return None
        at = document["last_connect"]
        at_ns = int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000
        return LastConnect(member_id, str(document.get("session_id", "")), at_ns)

    def joined(self, member_id: int, room_id: int) -> None:
        rooms = self._joined.setdefault(member_id, set())
        if len(rooms) < MAX_MEMBER_ROOMS:
            rooms.add(room_id)
            self._loop.poke()

    async def rooms(self, member_id: int) -> list[int]:
        async with reading():
            cursor = self._collection.find({"user_id": member_id}, {"rooms": 1})
            documents = await cursor.to_list()
        listed = (document.get("rooms") for document in documents)
        return sorted({room for rooms in listed if isinstance(rooms, list) for room in rooms})

    async def _flush(self) -> None:
        events, self._pending = self._pending, {}
        joined, self._joined = self._joined, {}
        try:
            async with reading():
                await self._ensure_index()
                await _each(events, self._write_event)
                await _each(joined, self._add_rooms)
        finally:
            for member_id, event in events.items():  # newer events win on the retry
                self._pending.setdefault(member_id, event)
            for member_id, rooms in joined.items():
                self._joined.setdefault(member_id, set()).update(rooms)

    async def _write_event(self, member_id: int, event: LastConnect) -> None:
        with contextlib.suppress(DuplicateKeyError):
            # The stored event is the later one, so it stays.
            await self._collection.update_one(*_upsert(event), upsert=True)

    async def _add_rooms(self, member_id: int, rooms: set[int]) -> None:
        full = f"rooms.{MAX_MEMBER_ROOMS - 1}"
        await self._collection.update_one(
            {"user_id": member_id, full: {"$exists": False}},
            {"$addToSet": {"rooms": {"$each": sorted(rooms)}}},
        )

    async def _ensure_index(self) -> None:
        if self._indexed:
            return
        try:
            await self._collection.create_index(
                [("user_id", ASCENDING)], name="user_id_unique", unique=True
            )
        except OperationFailure as exc:
            # An existing collection with several documents per member: reads
            # take the latest, so a plain index does.
            logger.warning("websocket.user_id is not unique (%s); using a plain index", exc)
            await self._collection.create_index([("user_id", ASCENDING)], name="user_id")
        self._indexed = True


async def _each(batch: dict[int, T], write: Callable[[int, T], Awaitable[None]]) -> None:
    """Write each member's entry of ``batch``, removing it once written."""
    while batch:
        member_id, entry = next(iter(batch.items()))
        await write(member_id, entry)
        del batch[member_id]


def _upsert(event: LastConnect) -> tuple[dict[str, Any], dict[str, Any]]:
    """The filter and update replacing the member's event if older, or inserting it."""
    at = datetime.datetime.fromtimestamp(event.at_ns / 1e9, datetime.UTC)
    return (
        {"user_id": event.member_id, "last_connect": {"$lt": at}},
        {"$set": {"session_id": event.session_id, "last_connect": at}},
    )
