"""
The MongoDB store, with PyMongo's async API (``pymongo.AsyncMongoClient``).

Documents keep the seed's shape in its collection ``chat_messages`` (``_id``
ObjectId, ``chat_room_id``, ``user_id``, ``nickname``, ``message``,
``file_id``, ``file_name``, ``create_at``), so the gateway can take over an
existing database, plus ``partition`` and ``offset``: the message's place on
the bus, which orders a room's messages exactly as they were delivered
(documents written by the seed have no offset and sort first, by ``_id``).
``_id`` is the message id, so writing a message twice keeps one copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import BulkWriteError, PyMongoError

from .messages import ChatMessage, local_date_time
from .store import StoreError

__all__ = ["DUPLICATE_KEY", "MongoStore", "reading"]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
CHECK_TIMEOUT = 1.0  # readiness probes must answer quickly
_ORDER = [("offset", ASCENDING), ("_id", ASCENDING)]
_REVERSE = [("offset", DESCENDING), ("_id", DESCENDING)]


class MongoStore:
    """
    A :class:`~persistence.store.MessageStore` in MongoDB.

    Args:
        uri: A MongoDB connection string; its database, or ``chat``.
        collection: The collection, ``chat_messages`` like the seed.
        timeout: Seconds to wait for a server before an operation fails.

    """

    shared = True  # every instance writes to and reads from the same database

    def __init__(
        self,
        uri: str,
        collection: str = "chat_messages",
        timeout: float = 5.0,
        zone: datetime.tzinfo = datetime.UTC,
    ) -> None:
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            uri, serverSelectionTimeoutMS=int(timeout * 1000), tz_aware=True
        )
        self.database = self._client.get_default_database("chat")
        self._messages = self.database[collection]
        self._indexes: asyncio.Task[None] | None = None
        self._closing = False
        self.zone = zone

    async def start(self) -> None:
        """Create the indexes, now or, while MongoDB is down, as soon as it is back."""
        self._indexes = asyncio.create_task(self._create_indexes(), name="mongo-indexes")

    async def _create_indexes(self) -> None:
        delay = 0.5
        while not self._closing:
            try:
                await self._messages.create_index(
                    [("chat_room_id", ASCENDING), *_ORDER], name="room_order"
                )
                return
            except PyMongoError as exc:
                logger.warning("cannot create MongoDB indexes yet (retrying): %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def close(self) -> None:
        self._closing = True
        if self._indexes is not None:
            self._indexes.cancel()
            # PyMongo may swallow the cancellation while it waits for a server;
            # the flag then ends the loop, and close() does not wait for that.
            await asyncio.wait({self._indexes}, timeout=1.0)
        await self._client.close()

    async def save(self, messages: Sequence[ChatMessage]) -> None:
        """
        Insert ``messages``; those already stored are left as they are.

        Raises:
            StoreError: MongoDB did not take them; nothing is lost by trying again.

        """
        if not messages:
            return
        try:
            await self._messages.insert_many([_document(m) for m in messages], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise StoreError(f"MongoDB refused messages: {errors[:3]}") from exc
        except PyMongoError as exc:
            raise StoreError(f"MongoDB is unavailable: {exc}") from exc

    async def history(self, room_id: int, *, before: str | None, limit: int) -> list[ChatMessage]:
        query: dict[str, Any] = {"chat_room_id": room_id}
        async with reading():
            if before is not None:
                query.update(await self._older_than(ObjectId(before)))
            cursor = self._messages.find(query).sort(_REVERSE).limit(limit)
            documents = await cursor.to_list()
        return [_message(document, self.zone) for document in reversed(documents)]

    async def get(self, message_id: str) -> ChatMessage | None:
        if not ObjectId.is_valid(message_id):
            return None
        async with reading():
            document = await self._messages.find_one({"_id": ObjectId(message_id)})
        return None if document is None else _message(document, self.zone)

    async def after(self, room_id: int, after: str, limit: int) -> list[ChatMessage] | None:
        if not ObjectId.is_valid(after):
            return None
        async with reading():
            anchor = await self._messages.find_one(
                {"_id": ObjectId(after), "chat_room_id": room_id}
            )
            if anchor is None:
                return None
            query = {"chat_room_id": room_id, **_beyond(anchor, "$gt")}
            documents = await self._messages.find(query).sort(_ORDER).limit(limit).to_list()
        return [_message(document, self.zone) for document in documents]

    async def last_messages(self, room_ids: Sequence[int]) -> list[ChatMessage]:
        async def newest(room_id: int) -> list[dict[str, Any]]:
            # The room_order index, walked backwards: one document read per room.
            cursor = self._messages.find({"chat_room_id": room_id}).sort(_REVERSE).limit(1)
            return await cursor.to_list()

        async with reading():
            found = await asyncio.gather(*map(newest, room_ids))
        return [_message(document, self.zone) for documents in found for document in documents]

    async def _older_than(self, before: ObjectId) -> dict[str, Any]:
        anchor = await self._messages.find_one({"_id": before})
        if anchor is None:
            # A message this database never had: ObjectIds sort by creation time.
            return {"_id": {"$lt": before}}
        return _beyond(anchor, "$lt")

    async def check(self) -> str | None:
        try:
            await asyncio.wait_for(self._client.admin.command("ping"), CHECK_TIMEOUT)
        except TimeoutError:
            return f"MongoDB did not answer a ping within {CHECK_TIMEOUT} s"
        except PyMongoError as exc:
            return f"MongoDB is unreachable: {exc}"
        return None


@contextlib.asynccontextmanager
async def reading() -> AsyncIterator[None]:
    """Turn PyMongo's errors into :class:`StoreError`."""
    try:
        yield
    except PyMongoError as exc:
        raise StoreError(f"MongoDB is unavailable: {exc}") from exc


def _beyond(anchor: dict[str, Any], operator: str) -> dict[str, Any]:
    """The filter for documents after (``$gt``) or before (``$lt``) ``anchor`` in room order."""
    offset = anchor.get("offset")
    same_offset_and_id = {"offset": offset, "_id": {operator: anchor["_id"]}}
    if offset is None:
        # A seed document: seed documents order by _id and come before all others.
        if operator == "$lt":
            return {"offset": None, "_id": {"$lt": anchor["_id"]}}
        return {"$or": [same_offset_and_id, {"offset": {"$ne": None}}]}
    later = {"offset": {operator: offset}}
    if operator == "$lt":
        return {"$or": [later, same_offset_and_id, {"offset": None}]}
    return {"$or": [later, same_offset_and_id]}


def _document(message: ChatMessage) -> dict[str, Any]:
    return {
        "_id": ObjectId(message.id),
        "chat_room_id": message.chat_room_id,
        "user_id": message.member_id,
        "nickname": message.nickname,
        "message": message.message,
        "file_id": message.file_id,
        "file_name": message.file_name,
        "create_at": message.create_at,
        "partition": message.partition,
        "offset": message.offset,
    }


def _message(document: dict[str, Any], zone: datetime.tzinfo) -> ChatMessage:
    return ChatMessage(
        id=str(document["_id"]),
        chat_room_id=document["chat_room_id"],
        member_id=document["user_id"],
        nickname=document.get("nickname") or "",
        message=document.get("message"),
        file_id=document.get("file_id"),
        file_name=document.get("file_name"),
        create_at=_local_date_time(document.get("create_at"), zone),
        partition=document.get("partition"),
        offset=document.get("offset"),
    )


def _local_date_time(value: Any, zone: datetime.tzinfo) -> str:
    """
    Return ``create_at`` as the seed's clients read it.

    The gateway stores the string; Spring Data may have stored a
    ``LocalDateTime`` as a BSON date (an instant), shown in ``zone``.
    """
    if not isinstance(value, datetime.datetime):
        return "" if value is None else str(value)
    microseconds = (value - _EPOCH) // datetime.timedelta(microseconds=1)
    return local_date_time(microseconds * 1000, zone)
