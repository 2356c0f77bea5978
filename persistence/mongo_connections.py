"""
The connection log in MongoDB's ``websocket`` collection, the seed's shape:
one document per member, ``user_id``, ``session_id`` and ``last_connect``
(a BSON date, as Spring Data stores a ``LocalDateTime``).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from .batching import FlushLoop
from .connections import LastConnect
from .mongo import reading

__all__ = ["MongoConnectionLog"]

logger = logging.getLogger(__name__)


class MongoConnectionLog:
    """
    A :class:`~persistence.connections.ConnectionLog` written behind in batches.

    Events of one member in a batch collapse to the latest; a stored event
    is replaced only by a later one, so instances writing the same member in
    any order agree (the unique index on ``user_id`` turns the upsert of an
    older event into a duplicate key, ignored). One update per member: FerretDB
    answers a bulk write with such an error in a shape PyMongo cannot read.
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
        try:
            async with reading():
                await self._ensure_index()
                while batch:
                    member_id, event = next(iter(batch.items()))
                    with contextlib.suppress(DuplicateKeyError):
                        # The stored event is the later one, so it stays.
                        await self._collection.update_one(*_upsert(event), upsert=True)
                    del batch[member_id]
        finally:
            for member_id, event in batch.items():  # newer events win on the retry
                self._pending.setdefault(member_id, event)

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


def _upsert(event: LastConnect) -> tuple[dict[str, Any], dict[str, Any]]:
    """The filter and update replacing the member's event if older, or inserting it."""
    at = datetime.datetime.fromtimestamp(event.at_ns / 1e9, datetime.UTC)
    return (
        {"user_id": event.member_id, "last_connect": {"$lt": at}},
        {"$set": {"session_id": event.session_id, "last_connect": at}},
    )
