"""
Presence across instances, with per-instance leases in MongoDB.

Each instance writes one document per (room, member) it serves to
``presence`` (``_id`` ``instance/room/member``, ``instance``, ``room``,
``member``, ``epoch``) and holds a lease in ``instances`` (``_id`` the
instance, ``expires_at``), renewed every third of the TTL. Readers ignore the
rows of instances whose lease has expired, so the members of a crashed
instance vanish at most one TTL after its last renewal; live instances then
delete the expired instances' rows (FerretDB has no TTL indexes, so this is
done by hand). Joins and leaves are written behind in batches within
:data:`~persistence.batching.WriteLoop` delay.

After an outage longer than the TTL another instance may have deleted this
one's rows: the next two renewals rewrite all of them (a new ``epoch``, then
the rows of older epochs are deleted), so the state heals without a gap.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import time
from typing import Any

from pymongo import ASCENDING, DeleteOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from .batching import WriteLoop
from .mongo import reading
from .store import StoreError

__all__ = ["MongoPresence"]

logger = logging.getLogger(__name__)

Key = tuple[int, int]  # (room, member)


class MongoPresence:
    """
    A :class:`~persistence.presence_store.PresenceStore` shared by every instance.

    Args:
        database: The gateway's database.
        ttl: Seconds a lease lasts: the bound on ghosts of a crashed instance.

    """

    def __init__(self, database: AsyncDatabase[dict[str, Any]], *, ttl: float) -> None:
        self.instance = secrets.token_hex(8)
        self.ttl = ttl
        self._rows = database["presence"]
        self._instances = database["instances"]
        self._local: set[Key] = set()
        self._changes: dict[Key, bool] = {}  # True: joined, False: left
        self._epoch = 0
        self._resyncs = 1  # the first renewal writes every row
        self._renewed = -ttl  # monotonic time of the last successful renewal
        self._indexed = False
        self._loop = WriteLoop(self._flush, "presence", every=ttl / 3)

    async def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.stop()
        self._local.clear()
        try:
            async with reading():
                await self._rows.delete_many({"instance": self.instance})
                await self._instances.delete_one({"_id": self.instance})
        except StoreError as exc:
            logger.warning("presence not withdrawn (its lease will expire): %s", exc)

    def join(self, room_id: int, member_id: int) -> None:
        self._local.add((room_id, member_id))
        self._changes[room_id, member_id] = True
        self._loop.poke()

    def leave(self, room_id: int, member_id: int) -> None:
        self._local.discard((room_id, member_id))
        self._changes[room_id, member_id] = False
        self._loop.poke()

    async def members(self, room_id: int) -> list[int]:
        now = _utc_now()
        async with reading():
            live = {
                document["_id"]
                async for document in self._instances.find({"expires_at": {"$gt": now}})
            }
            rows = self._rows.find({"room": room_id, "instance": {"$ne": self.instance}})
            members = {row["member"] async for row in rows if row["instance"] in live}
        members.update(member for room, member in self._local if room == room_id)
        return sorted(members)

    async def _flush(self) -> None:
        async with reading():
            if not self._indexed:
                await self._rows.create_index([("room", ASCENDING)], name="room")
                self._indexed = True
            if time.monotonic() - self._renewed >= self.ttl / 3:
                await self._renew()
            if self._resyncs:
                await self._resync()
            else:
                await self._write_changes()

    async def _renew(self) -> None:
        started = time.monotonic()
        if started - self._renewed >= self.ttl:
            self._resyncs = 2  # the lease lapsed: others may be deleting our rows
        expires_at = _utc_now() + datetime.timedelta(seconds=self.ttl)
        await self._instances.update_one(
            {"_id": self.instance}, {"$set": {"expires_at": expires_at}}, upsert=True
        )
        self._renewed = started
        await self._collect_expired()

    async def _collect_expired(self) -> None:
        """Delete the rows of instances whose lease expired, then their lease."""
        expired = self._instances.find({"expires_at": {"$lte": _utc_now()}})
        async for document in expired:
            await self._rows.delete_many({"instance": document["_id"]})
            await self._instances.delete_one(
                {"_id": document["_id"], "expires_at": document["expires_at"]}
            )
            logger.info("presence of expired instance %s removed", document["_id"])

    async def _resync(self) -> None:
        self._epoch += 1
        self._changes.clear()
        if self._local:
            await self._rows.bulk_write([self._put(key) for key in self._local], ordered=False)
        await self._rows.delete_many({"instance": self.instance, "epoch": {"$ne": self._epoch}})
        self._resyncs -= 1

    async def _write_changes(self) -> None:
        changes, self._changes = self._changes, {}
        if not changes:
            return
        try:
            writes = [
                self._put(key) if joined else DeleteOne({"_id": self._id(key)})
                for key, joined in changes.items()
            ]
            await self._rows.bulk_write(writes, ordered=False)
        except BaseException:
            self._changes = changes | self._changes  # later changes win on the retry
            raise

    def _put(self, key: Key) -> ReplaceOne[dict[str, Any]]:
        room, member = key
        document = {
            "instance": self.instance,
            "room": room,
            "member": member,
            "epoch": self._epoch,
        }
        return ReplaceOne({"_id": self._id(key)}, document, upsert=True)

    def _id(self, key: Key) -> str:
        return f"{self.instance}/{key[0]}/{key[1]}"


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
