"""
A gateway with the MongoDB store (``--mongo-uri``) on a real MongoDB-wire
server: what STOMP clients send lands in ``chat_messages`` in the seed's shape,
the history API pages through it, and an outage of MongoDB stops neither live
delivery nor, once it is back, the history (every message exactly once).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection

from gateway import Gateway
from persistence.mongo import MongoStore
from protocol import Command
from tests.support.http import http_get
from tests.support.servers import (
    MONGO_LOCAL,
    UNLIMITED_SENDS,
    GatewayFactory,
    mongo_local,
    parse_mongo_uri,
    with_database,
)
from tests.support.stomp_client import StompTestClient, chat_body, connected, payload

pytestmark = [pytest.mark.mongo, pytest.mark.timeout(180)]

WAIT = 10.0
GATEWAY_FIELDS = {
    "_id",
    "chat_room_id",
    "user_id",
    "nickname",
    "message",
    "file_id",
    "file_name",
    "create_at",
    "partition",
    "offset",
}


async def wait_stored(gateway: Gateway, timeout: float = 30.0) -> float:
    """Wait until the persister has stored everything the bus carried; return how long."""
    started = time.monotonic()
    while gateway.persister.lag:
        assert time.monotonic() - started < timeout, f"persister lag {gateway.persister.lag}"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def get_json(port: int, path: str, timeout: float = 10.0) -> tuple[int, Any]:
    status, body = await http_get(port, path, timeout)
    return status, json.loads(body)


async def all_history(port: int, room: int, limit: int) -> list[dict[str, Any]]:
    """The room's whole history through the HTTP API, paging back with ``before``."""
    pages: list[list[dict[str, Any]]] = []
    query = f"limit={limit}"
    while True:
        status, page = await get_json(port, f"/v1/api/chat/{room}?{query}")
        assert status == 200, page
        if not page:
            break
        assert len(page) <= limit
        pages.append(page)
        query = f"limit={limit}&before={page[0]['id']}"
    return [message for page in reversed(pages) for message in page]


async def test_messages_sent_over_stomp_are_stored_in_the_seed_shape(
    make_gateway: GatewayFactory,
    mongo_db_uri: str,
    raw: AsyncCollection[dict[str, Any]],
    clients: list[StompTestClient],
) -> None:
    gateway = await make_gateway(mongo_uri=mongo_db_uri)
    assert isinstance(gateway.store, MongoStore)
    client = await connected(gateway.port, clients)
    await client.subscribe("/sub/chat/4")
    await client.send_chat(4, chat_body("안녕하세요", member_id=7, nickname="henhen"))
    file = {"memberId": 8, "nickname": "kim", "fileId": 12, "fileName": "cat.png"}
    await client.send_chat(4, json.dumps(file).encode())
    frames = [await client.expect(Command.MESSAGE) for _ in range(2)]
    await wait_stored(gateway)

    documents = await raw.find({}).sort("offset", 1).to_list()
    assert len(documents) == 2
    for document, frame in zip(documents, frames, strict=True):
        sent = payload(frame)
        assert set(document) == GATEWAY_FIELDS, document
        assert document == {
            "_id": ObjectId(sent["id"]),
            "chat_room_id": 4,
            "user_id": sent["memberId"],
            "nickname": sent["nickname"],
            "message": sent["message"],
            "file_id": sent["fileId"],
            "file_name": sent["fileName"],
            "create_at": sent["createAt"],
            "partition": int(frame.get("x-partition", "-1")),
            "offset": int(frame.get("x-offset", "-1")),
        }
    assert documents[0]["message"] == "안녕하세요"
    assert (documents[1]["message"], documents[1]["file_id"]) == (None, 12)

    assert await get_json(gateway.port, "/v1/api/chat/4") == (200, [payload(f) for f in frames])
    assert await get_json(gateway.port, "/readyz") == (200, {"status": "ready"})


async def test_history_pages_through_mongodb_exactly_once_in_order(
    make_gateway: GatewayFactory,
    mongo_db_uri: str,
    raw: AsyncCollection[dict[str, Any]],
    clients: list[StompTestClient],
) -> None:
    count = 250
    gateway = await make_gateway(mongo_uri=mongo_db_uri, **UNLIMITED_SENDS)
    sender = await connected(gateway.port, clients)
    watcher = await connected(gateway.port, clients)
    await watcher.subscribe("/sub/chat/5")
    for n in range(count):
        await sender.send_chat(5, chat_body(f"m{n}"), receipt=False)
        if n % 50 == 0:
            await sender.send_chat(6, chat_body(f"other{n}"), receipt=False)
    await sender.barrier()
    live = [payload(await watcher.expect(Command.MESSAGE)) for _ in range(count)]
    await wait_stored(gateway)
    assert await raw.count_documents({"chat_room_id": 5}) == count

    # A history of its own: the store's, not something the gateway keeps in memory.
    for limit in (100, 7):
        history = await all_history(gateway.port, 5, limit)
        assert [m["message"] for m in history] == [f"m{n}" for n in range(count)]
        assert history == live
    status, newest = await get_json(gateway.port, "/v1/api/chat/5?limit=3")
    assert (status, newest) == (200, live[-3:])
    assert await get_json(gateway.port, "/readyz") == (200, {"status": "ready"})


# MongoDB down: a server of the test's own, stopped and started again.


@dataclasses.dataclass
class PrivateMongo:
    """A ``scripts/mongo-local`` server in a state dir of its own."""

    env: dict[str, str]
    uri: str

    async def stop_keeping_data(self) -> None:
        await asyncio.to_thread(mongo_local, "stop", "--keep-data", env=self.env)

    async def start(self) -> str:
        result = await asyncio.to_thread(mongo_local, "start", env=self.env)
        return parse_mongo_uri(result.stdout)


@pytest.fixture
def private_mongo(tmp_path: Path) -> Iterator[PrivateMongo]:
    env = {"MONGO_LOCAL_DIR": str(tmp_path / "mongo-local")}
    server = PrivateMongo(env, parse_mongo_uri(mongo_local("start", env=env).stdout))
    yield server
    subprocess.run(
        [str(MONGO_LOCAL), "stop"],
        env={**os.environ, **env},
        capture_output=True,
        check=False,
        timeout=60,
    )


@dataclasses.dataclass
class Readiness:
    """``/readyz`` answers: when asked, when answered, status and body."""

    asked: float
    answered: float
    status: int
    body: str


async def test_mongodb_outage_stops_neither_live_delivery_nor_history(
    private_mongo: PrivateMongo,
    make_gateway: GatewayFactory,
    clients: list[StompTestClient],
) -> None:
    room = 7
    database = f"test_{uuid.uuid4().hex}"
    gateway = await make_gateway(
        mongo_uri=with_database(private_mongo.uri, database), **UNLIMITED_SENDS
    )
    sender = await connected(gateway.port, clients)
    subscriber = await connected(gateway.port, clients)
    await subscriber.subscribe(f"/sub/chat/{room}")
    assert (await http_get(gateway.port, "/readyz"))[0] == 200

    sent: list[tuple[str, float]] = []  # text, when it was sent
    received: dict[str, tuple[str, float]] = {}  # text -> id, when it arrived
    order: list[str] = []
    readiness: list[Readiness] = []
    sending = asyncio.Event()
    sending.set()
    max_lag = 0

    async def send() -> None:
        n = 0
        while sending.is_set():
            text = f"m{n}"
            at = time.monotonic()
            await sender.send_chat(room, chat_body(text))
            sent.append((text, at))
            n += 1
            await asyncio.sleep(0.01)

    async def receive() -> None:
        while True:
            message = payload(await subscriber.expect(Command.MESSAGE, timeout=60))
            assert message["message"] not in received, f"{message['message']} twice"
            received[message["message"]] = (message["id"], time.monotonic())
            order.append(message["message"])

    async def poll_readiness() -> None:
        while True:
            asked = time.monotonic()
            status, body = await http_get(gateway.port, "/readyz", timeout=20)
            readiness.append(Readiness(asked, time.monotonic(), status, body))
            await asyncio.sleep(0.1)

    async def watch_lag() -> None:
        nonlocal max_lag
        while True:
            max_lag = max(max_lag, gateway.persister.lag)
            await asyncio.sleep(0.01)

    tasks = [
        asyncio.create_task(coroutine()) for coroutine in (send, receive, poll_readiness, watch_lag)
    ]
    try:
        await asyncio.sleep(1.0)
        stopping = time.monotonic()
        await private_mongo.stop_keeping_data()
        down = time.monotonic()
        # Down for 3 s at least, and until /readyz has said so (while the server is
        # down, a check waits for it up to the store's selection timeout, 5 s).
        while time.monotonic() - down < 3.0 or (
            time.monotonic() - down < 15.0
            and not any(r.status == 503 and r.answered >= stopping for r in readiness)
        ):
            await asyncio.sleep(0.05)
        restarting = time.monotonic()
        assert await private_mongo.start() == private_mongo.uri
        up = time.monotonic()
        await asyncio.sleep(1.0)
        sending.clear()
        await tasks[0]
        await sender.barrier()
        deadline = time.monotonic() + WAIT
        while len(received) < len(sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        caught_up = await wait_stored(gateway, timeout=90)
        ready_again = time.monotonic()
        while (await http_get(gateway.port, "/readyz", timeout=20))[0] != 200:
            assert time.monotonic() - ready_again < 30, "/readyz not 200 after the outage"
            await asyncio.sleep(0.1)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if not isinstance(result, asyncio.CancelledError | type(None)):
            raise result

    texts = [text for text, _ in sent]
    during = [(text, at) for text, at in sent if down <= at <= restarting]
    latencies = [received[text][1] - at for text, at in during if text in received]
    outage_answers = [r for r in readiness if r.asked >= stopping and r.answered <= up]
    history = await all_history(gateway.port, room, 1000)
    around_down = [
        (round(r.asked - down, 1), round(r.answered - r.asked, 1), r.status)
        for r in outage_answers
        if r.asked >= down - 1
    ]
    print(
        f"sent {len(texts)} messages, {len(during)} while MongoDB was down "
        f"({restarting - down:.1f} s); received live {len(received)}; "
        f"max live latency during the outage {max(latencies, default=0) * 1000:.0f} ms; "
        f"stop took {down - stopping:.1f} s; /readyz from 1 s before the server was down "
        f"(asked at, took, status): {around_down}; "
        f"max persister lag {max_lag}; stored {len(history)} "
        f"{caught_up:.1f} s after the sender stopped"
    )

    # Live delivery never stopped: everything arrived, in order, the outage's promptly.
    assert order == texts
    assert len(during) >= 100, len(during)
    assert len(latencies) == len(during)
    assert max(latencies) < 1.0, max(latencies)
    # /readyz told, with a reason, at least once while the server was down.
    unready = [r for r in outage_answers if r.status == 503]
    assert unready, [(r.status, r.body) for r in readiness]
    assert all(json.loads(r.body)["error"] for r in unready)
    assert max_lag >= len(during) // 2, max_lag
    # And the history has every message exactly once, in order.
    assert [m["message"] for m in history] == texts
    assert [m["id"] for m in history] == [received[text][0] for text in texts]
