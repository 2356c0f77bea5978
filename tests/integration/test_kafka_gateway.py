"""
Two ``stomp-gateway`` processes sharing a real Kafka topic: a message sent
through one instance reaches the subscribers of the other, in order, with its
Kafka position; a RECEIPT means the record is in Kafka; ``/readyz`` tells.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from protocol import Command, Frame
from tests.support.servers import UNLIMITED_SENDS_ARGS, GatewayProcess, GatewaySpawner
from tests.support.stomp_client import StompTestClient, chat_body, connected

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

WAIT = 15.0


@pytest.fixture
async def gateways(
    spawn_gateway: GatewaySpawner, kafka_bootstrap: str, created_kafka_topic: str
) -> tuple[GatewayProcess, GatewayProcess]:
    """
    Instances A and B on this test's topic, both ready. The topic is created
    first (the gateway creating it is tested in tests/kafka_bridge, with its race).
    """
    args = (
        "--kafka-bootstrap",
        kafka_bootstrap,
        "--kafka-topic",
        created_kafka_topic,
        *UNLIMITED_SENDS_ARGS,  # one sender streams hundreds of messages
    )
    a, b = await asyncio.gather(spawn_gateway(*args), spawn_gateway(*args))
    return a, b


def chat_text(frame: Frame) -> str:
    assert frame.command is Command.MESSAGE, frame
    text: str = json.loads(frame.body)["message"]
    return text


async def test_readyz_with_broker_up(gateways: tuple[GatewayProcess, GatewayProcess]) -> None:
    for gateway in gateways:
        status, body = await gateway.get("/readyz")
        assert (status, json.loads(body)) == (200, {"status": "ready"})
        assert (await gateway.get("/healthz"))[0] == 200


async def test_room_messages_cross_instances_in_order_without_leaks(
    gateways: tuple[GatewayProcess, GatewayProcess], clients: list[StompTestClient]
) -> None:
    a, b = gateways
    count = 300
    sender = await connected(a.port, clients)
    room4 = await connected(b.port, clients)
    room5 = await connected(b.port, clients)
    await room4.subscribe("/sub/chat/4", "s4")
    await room5.subscribe("/sub/chat/5", "s5")

    # Pipelined SENDs, room 5 interleaved with room 4.
    room5_texts: list[str] = []
    for n in range(count):
        await sender.send_chat(4, chat_body(f"r4-{n}"), receipt=False)
        if n % 10 == 0:
            room5_texts.append(f"r5-{n}")
            await sender.send_chat(5, chat_body(room5_texts[-1]), receipt=False)
    await sender.barrier()

    frames = [await room4.expect(Command.MESSAGE, timeout=WAIT) for _ in range(count)]
    assert [chat_text(f) for f in frames] == [f"r4-{n}" for n in range(count)]
    assert {f.get("destination") for f in frames} == {"/sub/chat/4"}
    assert {f.get("subscription") for f in frames} == {"s4"}
    assert {f.get("x-partition") for f in frames} == {str(4 % 3)}
    offsets = [int(f.get("x-offset", "-1")) for f in frames]
    # Room 4 alone writes partition 1 of this fresh topic: offsets 0, 1, 2, ...
    assert offsets == list(range(count))
    assert [f.get("message-id") for f in frames] == [json.loads(f.body)["id"] for f in frames]

    frames5 = [await room5.expect(Command.MESSAGE, timeout=WAIT) for _ in room5_texts]
    assert [chat_text(f) for f in frames5] == room5_texts
    assert {f.get("x-partition") for f in frames5} == {str(5 % 3)}
    # B has fanned out every room-5 record: none of them reached the room-4 subscriber.
    assert await room4.barrier() == []
    assert await room5.barrier() == []


async def test_sender_instance_subscribers_get_their_own_messages(
    gateways: tuple[GatewayProcess, GatewayProcess], clients: list[StompTestClient]
) -> None:
    a, b = gateways
    on_a = await connected(a.port, clients)
    on_b = await connected(b.port, clients)
    await on_a.subscribe("/sub/chat/9")
    await on_b.subscribe("/sub/chat/9")
    await on_a.send_chat(9, chat_body("from a"))
    await on_b.send_chat(9, chat_body("from b"))
    for client in (on_a, on_b):
        texts = [chat_text(await client.expect(Command.MESSAGE, timeout=WAIT)) for _ in range(2)]
        assert texts == ["from a", "from b"]


async def read_partition_until(
    consumer: AIOKafkaConsumer, tp: TopicPartition, end: int
) -> list[Any]:
    """Read ``tp`` from the consumer's position up to offset ``end`` (exclusive)."""
    records: list[Any] = []
    async with asyncio.timeout(WAIT):
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=500)
            records.extend(r for r in batches.get(tp, []) if r.offset < end)
    return records


async def test_receipt_only_once_record_is_readable_from_kafka(
    gateways: tuple[GatewayProcess, GatewayProcess],
    clients: list[StompTestClient],
    kafka_bootstrap: str,
    created_kafka_topic: str,
) -> None:
    kafka_topic = created_kafka_topic
    a, b = gateways
    sender = await connected(a.port, clients)
    subscriber = await connected(b.port, clients)
    await subscriber.subscribe("/sub/chat/4")
    tp = TopicPartition(kafka_topic, 4 % 3)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        ids: dict[str, str] = {}  # text -> chat message id, as read from Kafka
        for n in range(12):
            text = f"receipted-{n}"
            await sender.send_chat(4, chat_body(text))  # returns once the RECEIPT is in
            # Right after the RECEIPT, the partition's readable end already covers it.
            (end,) = (await consumer.end_offsets([tp])).values()
            records = await read_partition_until(consumer, tp, end)
            values = [json.loads(r.value) for r in records]
            assert text in [v["message"] for v in values], (n, end, values)
            ids.update((v["message"], v["id"]) for v in values)
        assert len(ids) == 12
    finally:
        await consumer.stop()

    frames = [await subscriber.expect(Command.MESSAGE, timeout=WAIT) for _ in range(12)]
    assert [chat_text(f) for f in frames] == [f"receipted-{n}" for n in range(12)]
    # The MESSAGE that B delivers is the record read from Kafka: same id.
    assert [f.get("message-id") for f in frames] == [ids[chat_text(f)] for f in frames]


class HistoryIncomplete(AssertionError):
    """An instance's history misses messages the bus carried."""


async def test_history_on_every_instance_with_in_memory_store(
    gateways: tuple[GatewayProcess, GatewayProcess], clients: list[StompTestClient]
) -> None:
    a, b = gateways
    sender = await connected(a.port, clients)
    rooms = (4, 5, 6)  # partitions 1, 2, 0: both instances hold some of them
    for room in rooms:
        for n in range(3):
            await sender.send_chat(room, chat_body(f"history-{room}-{n}"))
    expected = {room: [f"history-{room}-{n}" for n in range(3)] for room in rooms}

    async def histories() -> dict[tuple[str, int], list[str]]:
        found = {}
        for name, gateway in (("A", a), ("B", b)):
            for room in rooms:
                status, body = await gateway.get(f"/v1/api/chat/{room}")
                assert status == 200, body
                found[name, room] = [m["message"] for m in json.loads(body)]
        return found

    want = {(name, room): expected[room] for name in ("A", "B") for room in rooms}
    deadline = time.monotonic() + 10  # the persisters save within a second or so
    while (found := await histories()) != want:
        if time.monotonic() > deadline:
            missing = {key: want[key] for key in want if found[key] != want[key]}
            raise HistoryIncomplete(f"history misses {missing}; found {found}")
        await asyncio.sleep(0.2)
