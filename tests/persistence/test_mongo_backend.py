"""
The connection log and presence in MongoDB, on a real MongoDB-wire server:
a later connection event is never replaced by an older one, the rooms each
member joined are remembered (boundedly), and presence rows of an instance
whose lease expired are not listed.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from persistence import InMemoryConnectionLog, LastConnect
from persistence.connections import MAX_MEMBER_ROOMS
from persistence.mongo_connections import MongoConnectionLog
from persistence.mongo_presence import MongoPresence

pytestmark = [pytest.mark.mongo, pytest.mark.timeout(60)]


@pytest.fixture
async def database(mongo_db_uri: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_db_uri, serverSelectionTimeoutMS=10_000, tz_aware=True
    )
    yield client.get_default_database()
    await client.close()


async def test_connection_log_keeps_the_latest_event(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    first, second = MongoConnectionLog(database), MongoConnectionLog(database)
    await first.start()
    await second.start()
    first.record(LastConnect(7, "newer", 2_000_000_000_000_000_000))
    await first.close()
    second.record(LastConnect(7, "older", 1_000_000_000_000_000_000))
    await second.close()
    assert await first.last_connect(7) == LastConnect(7, "newer", 2_000_000_000_000_000_000)
    documents = await database["websocket"].find({"user_id": 7}).to_list()
    assert [(d["session_id"], d["last_connect"].year) for d in documents] == [("newer", 2033)]


async def test_presence_ignores_expired_leases(database: AsyncDatabase[dict[str, Any]]) -> None:
    a, b = MongoPresence(database, ttl=30), MongoPresence(database, ttl=30)
    await a.start()
    await b.start()
    a.join(4, 1)
    b.join(4, 2)
    while await b.members(4) != [1, 2]:
        await asyncio.sleep(0.02)
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    await database["instances"].update_one({"_id": a.instance}, {"$set": {"expires_at": past}})
    assert await b.members(4) == [2]
    await b.close()
    await a.close()
    assert await database["presence"].count_documents({}) == 0


async def test_connection_log_remembers_the_rooms_joined(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    log = MongoConnectionLog(database)
    await log.start()
    log.record(LastConnect(7, "tab", 1_000_000_000_000_000_000))
    for room in (6, 4, 6):
        log.joined(7, room)
    log.joined(8, 5)  # no connect recorded: no document to add to
    await log.close()
    assert await log.rooms(7) == [4, 6]
    assert await log.rooms(8) == []
    log = MongoConnectionLog(database)  # another instance, and a later connect
    await log.start()
    log.record(LastConnect(7, "later", 2_000_000_000_000_000_000))
    log.joined(7, 5)
    await log.close()
    assert await log.rooms(7) == [4, 5, 6]
    assert (await log.last_connect(7)) == LastConnect(7, "later", 2_000_000_000_000_000_000)


async def test_connection_log_remembers_a_bounded_number_of_rooms(
    database: AsyncDatabase[dict[str, Any]],
) -> None:
    log = MongoConnectionLog(database)
    await log.start()
    log.record(LastConnect(7, "tab", 1_000_000_000_000_000_000))
    for room in range(MAX_MEMBER_ROOMS + 5):
        log.joined(7, room)
    await log.close()
    assert await log.rooms(7) == list(range(MAX_MEMBER_ROOMS))
    memory = InMemoryConnectionLog()
    for room in range(MAX_MEMBER_ROOMS + 5):
        memory.joined(7, room)
    assert await memory.rooms(7) == list(range(MAX_MEMBER_ROOMS))
