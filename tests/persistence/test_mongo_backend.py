"""
The connection log and presence in MongoDB, on a real MongoDB-wire server:
a later connection event is never replaced by an older one, and presence rows
of an instance whose lease expired are not listed.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from persistence import LastConnect
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
