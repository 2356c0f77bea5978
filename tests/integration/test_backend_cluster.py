"""
The backend resources on two ``stomp-gateway`` processes sharing real Kafka
and MongoDB: services post over HTTP and produce to the topic, and a
@stomp/stompjs subscriber on the other instance gets both in order with client
messages, stored once; last connection and last message come from MongoDB;
presence spans instances and forgets a SIGKILLed instance within its TTL.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import zoneinfo
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from gateway.chat.ids import local_date_time, new_object_id
from tests.support import node as nodejs
from tests.support.http import TOKEN, post
from tests.support.node import NodeClient, Spawn
from tests.support.servers import GatewayProcess, GatewaySpawner
from tests.support.stomp_client import StompTestClient, chat_body

pytestmark = [pytest.mark.kafka, pytest.mark.mongo, pytest.mark.timeout(120)]

spawn = nodejs.spawn_fixture("stompjs_client.mjs", "@stomp/stompjs", "ws")

TTL = 3.0  # presence lease: the bound on ghosts of a killed instance
WAIT = 20.0


@pytest.fixture
async def gateways(
    spawn_gateway: GatewaySpawner, kafka_bootstrap: str, created_kafka_topic: str, mongo_db_uri: str
) -> tuple[GatewayProcess, GatewayProcess]:
    args = (
        *("--kafka-bootstrap", kafka_bootstrap, "--kafka-topic", created_kafka_topic),
        *("--mongo-uri", mongo_db_uri, "--service-token", TOKEN),
        *("--member-header", "x-member-id", "--presence-ttl", str(TTL)),
    )
    a, b = await asyncio.gather(spawn_gateway(*args), spawn_gateway(*args))
    return a, b


async def get_json(gateway: GatewayProcess, path: str) -> Any:
    status, body = await gateway.get(path)
    assert status == 200, body
    return json.loads(body)


async def eventually(check: Any, what: str, timeout: float = WAIT) -> None:
    """Poll the async predicate ``check`` until true (fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.1)


async def produce(bootstrap: str, topic: str, room: int, text: str) -> dict[str, Any]:
    """Produce a chat message straight to the topic, as docs/mongodb.md documents."""
    message = {
        "id": new_object_id(),
        "chatRoomId": room,
        "memberId": 11,
        "nickname": "kafka-service",
        "message": text,
        "fileId": None,
        "fileName": None,
        "createAt": local_date_time(time.time_ns(), zoneinfo.ZoneInfo("UTC")),
    }
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        value = json.dumps(message, separators=(",", ":")).encode()
        await producer.send_and_wait(topic, value, key=str(room).encode(), partition=room % 3)
    finally:
        await producer.stop()
    return message


async def test_services_post_over_http_and_kafka(
    gateways: tuple[GatewayProcess, GatewayProcess],
    spawn: Spawn,
    clients: list[StompTestClient],
    kafka_bootstrap: str,
    created_kafka_topic: str,
) -> None:
    a, b = gateways
    node: NodeClient = await spawn()
    await node.do("connect", client="sub", url=nodejs.ws_url(b.port))
    await node.subscribe("sub", "/sub/chat/4")
    sender = await StompTestClient.open(a.port)
    clients.append(sender)
    await sender.connect("1.2")

    await sender.send_chat(4, chat_body("client 1"))
    status, posted = await post(a.port, 4, chat_body("http", 9, "uploader"))
    assert status == 201
    produced = await produce(kafka_bootstrap, created_kafka_topic, 4, "kafka")
    await sender.send_chat(4, chat_body("client 2"))

    texts = ["client 1", "http", "kafka", "client 2"]
    events = await node.wait_messages("sub", "/sub/chat/4", 4, timeout=WAIT)
    received = [json.loads(event["body"]) for event in events]
    assert [m["message"] for m in received] == texts
    assert received[1] == posted
    assert received[2] == produced

    async def stored() -> bool:
        history = await get_json(b, "/v1/api/chat/4")
        return len(history) >= len(texts)

    await eventually(stored, "4 messages in history")
    history = await get_json(a, "/v1/api/chat/4")
    assert [m["message"] for m in history] == texts
    assert [m["id"] for m in history][1:3] == [posted["id"], produced["id"]]
    last = await get_json(b, "/v1/api/chat/last/message?rooms=5,4")
    assert last == [{"chatRoomId": 4, "memberId": 7, "createAt": history[-1]["createAt"]}]
    await node.finish()


async def member(port: int, member_id: int, opened: list[StompTestClient]) -> StompTestClient:
    client = await StompTestClient.open(port)
    opened.append(client)
    await client.connect("1.2", headers=[("x-member-id", str(member_id))])
    return client


async def test_last_connect_in_mongo_two_tabs(
    gateways: tuple[GatewayProcess, GatewayProcess], clients: list[StompTestClient]
) -> None:
    a, b = gateways
    path = "/v1/api/chat/last/connect?memberId=7"
    tab1 = await member(a.port, 7, clients)
    await eventually(lambda: _status(b, path, 200), "tab 1's connect recorded")
    first = await get_json(b, path)
    tab2 = await member(b.port, 7, clients)

    async def moved_on(previous: str) -> bool:
        return bool((await get_json(a, path))["sessionId"] != previous)

    await eventually(lambda: moved_on(first["sessionId"]), "tab 2's connect recorded")
    second = await get_json(a, path)
    await tab1.close()  # the latest event of any tab wins: tab 1's disconnect
    await eventually(lambda: moved_on(second["sessionId"]), "tab 1's disconnect recorded")
    closed = await get_json(b, path)
    assert closed["sessionId"] == first["sessionId"]
    assert closed["lastConnect"] >= second["lastConnect"] >= first["lastConnect"]
    assert set(closed) == {"memberId", "sessionId", "lastConnect"}
    await tab2.close()


async def _status(gateway: GatewayProcess, path: str, status: int) -> bool:
    return (await gateway.get(path))[0] == status


async def test_presence_across_instances_and_after_sigkill(
    gateways: tuple[GatewayProcess, GatewayProcess], clients: list[StompTestClient]
) -> None:
    a, b = gateways
    members = [
        await member(port, m, clients) for port, m in ((a.port, 1), (a.port, 2), (b.port, 3))
    ]
    for client in members:
        await client.subscribe("/sub/chat/4", "s4")

    async def listed(gateway: GatewayProcess, expected: list[int]) -> bool:
        answer = await get_json(gateway, "/v1/api/chat/4/presence")
        return bool(answer == {"chatRoomId": 4, "memberIds": expected})

    await eventually(lambda: listed(b, [1, 2, 3]), "both instances' members listed on B")
    await eventually(lambda: listed(a, [1, 2, 3]), "both instances' members listed on A")
    # A clean disconnect: A is alive and renews its lease, so only the write-through removes it.
    await members[0].close()
    await eventually(lambda: listed(b, [2, 3]), "member 1 gone after a clean disconnect")

    a.process.send_signal(signal.SIGKILL)
    assert await asyncio.to_thread(a.process.wait) == -signal.SIGKILL
    killed_at = time.monotonic()
    await eventually(lambda: listed(b, [3]), "A's members gone after its lease", TTL * 3 + 5)
    print(f"A's members gone {time.monotonic() - killed_at:.1f} s after SIGKILL (TTL {TTL} s)")
