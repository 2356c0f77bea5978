"""
The connection log in MongoDB's ``websocket`` collection, the seed's shape:
one document per member, ``user_id``, ``session_id`` and ``last_connect``
(a BSON date, as Spring Data stores a ``LocalDateTime``).
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure

from .batching import FlushLoop
from .connections import LastConnect
from .mongo import DUPLICATE_KEY, reading
from .store import StoreError

__all__ = ["MongoConnectionLog"]

logger = logging.getLogger(__name__)


class MongoConnectionLog:
    """
    A :class:`~persistence.connections.ConnectionLog` written behind in batches.

    Events of one member in a batch collapse to the latest; a stored event
    is replaced only by a later one, so instances writing the same member in
    any order agree (the unique index on ``user_id`` turns the upsert of an
    older event into a duplicate key, ignored).
    """

    def __init__(self, database: AsyncDatabase[dict[str, Any]], collection: str = "websocket"):
        self._collection = database[collection]
        self._pending: dict[int, LastConnect] = {}
        self._loop = FlushLoop(self._flush, "connection-log")
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

    async def _flush(self) -> None:
        batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            async with reading():
                await self._ensure_index()
                await self._collection.bulk_write(
                    [_upsert(event) for event in batch.values()], ordered=False
                )
        except BulkWriteError as exc:
            # A duplicate key: the stored event is the later one, so it stays.
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise StoreError(f"MongoDB refused connection events: {errors[:3]}") from exc
        except StoreError:
            for member_id, event in batch.items():  # newer events win on the retry
                self._pending.setdefault(member_id, event)
            raise

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


def _upsert(event: LastConnect) -> UpdateOne:
    """Replace the member's event if older; insert it if the member has none."""
    at = datetime.datetime.fromtimestamp(event.at_ns / 1e9, datetime.UTC)
    return UpdateOne(
        {"user_id": event.member_id, "last_connect": {"$lt": at}},
        {"$set": {"session_id": event.session_id, "last_connect": at}},
        upsert=True,
    )
