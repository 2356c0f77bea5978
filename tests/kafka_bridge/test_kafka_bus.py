"""
:class:`kafka_bridge.kafka.KafkaBus` against a real broker (the ``kafka_bootstrap``
fixture): topic provisioning, deliveries with their position, partitioning as
read back by a plain consumer, and a record the gateway cannot read.

Every test uses a topic of its own (``kafka_topic``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kafka_bridge import BusError, Delivery, PublishError
from kafka_bridge.kafka import KafkaBus, KafkaSettings, partition_for
from protocol import Command
from tests.support.servers import GatewayFactory, create_kafka_topic
from tests.support.stomp_client import StompTestClient, chat_body

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

WAIT = 15.0  # seconds a delivery may take

BusFactory = Callable[..., KafkaBus]


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await client.start()
    yield client
    await client.close()


@pytest.fixture
async def make_bus(kafka_bootstrap: str, kafka_topic: str) -> AsyncIterator[BusFactory]:
    """Build buses on this test's topic (not started); all are closed afterwards."""
    buses: list[KafkaBus] = []

    def make(**overrides: Any) -> KafkaBus:
        settings: dict[str, Any] = {"bootstrap": kafka_bootstrap, "topic": kafka_topic}
        settings.update(overrides)
        bus = KafkaBus(KafkaSettings(**settings))
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()


def collect(bus: KafkaBus) -> asyncio.Queue[Delivery]:
    queue: asyncio.Queue[Delivery] = asyncio.Queue()
    bus.add_listener(queue.put_nowait)
    return queue


async def take(queue: asyncio.Queue[Delivery], count: int) -> list[Delivery]:
    return [await asyncio.wait_for(queue.get(), WAIT) for _ in range(count)]


async def describe(admin: AIOKafkaAdminClient, topic: str) -> dict[str, Any]:
    (description,) = await admin.describe_topics([topic])
    assert description["topic"] == topic
    assert description["error_code"] == 0, description
    return dict(description)


class DescribeRace(AssertionError):
    """KafkaBus.start() failed on a topic the broker had not described yet."""


async def publish(bus: KafkaBus, key: str, value: bytes) -> None:
    """Publish and wait until Kafka acknowledged the record."""
    await (await bus.publish(key, value))


async def start_creating(bus: KafkaBus) -> None:
    """Start a bus that creates its topic (and waits until the broker describes it)."""
    await bus.start()


async def read_all(bootstrap: str, topic: str, partitions: int, count: int) -> list[Any]:
    """Read the first ``count`` records of ``topic`` with a plain consumer (no group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        records: list[Any] = []
        async with asyncio.timeout(WAIT):
            while len(records) < count:
                batches = await consumer.getmany(timeout_ms=500)
                for batch in batches.values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


# Topic provisioning.


@pytest.mark.parametrize("partitions", [3, 5])
async def test_creates_missing_topic_with_configured_partitions(
    make_bus: BusFactory, admin: AIOKafkaAdminClient, kafka_topic: str, partitions: int
) -> None:
    assert kafka_topic not in await admin.list_topics()
    bus = make_bus(partitions=partitions)
    deliveries = collect(bus)
    await start_creating(bus)

    description = await describe(admin, kafka_topic)
    assert sorted(p["partition"] for p in description["partitions"]) == list(range(partitions))
    assert all(len(p["replicas"]) == 1 for p in description["partitions"])

    # The very first record on the brand-new topic reaches the listener:
    # the consumer resolved its start position before start() returned.
    await publish(bus, "4", b'{"first":true}')
    (delivery,) = await take(deliveries, 1)
    assert delivery == Delivery("4", b'{"first":true}', partition=4 % partitions, offset=0)


async def test_topic_with_too_few_partitions_is_refused(
    make_bus: BusFactory, admin: AIOKafkaAdminClient, kafka_bootstrap: str, kafka_topic: str
) -> None:
    await create_kafka_topic(kafka_bootstrap, kafka_topic, partitions=1)
    bus = make_bus(partitions=3)
    with pytest.raises(BusError) as raised:
        await bus.start()
    message = str(raised.value)
    assert repr(kafka_topic) in message
    assert "has 1 partitions" in message
    assert "--kafka-partitions is 3" in message
    assert "add partitions to the topic or lower --kafka-partitions" in message
    # Nothing was started, and the topic was left as it was.
    assert await bus.check() == "the Kafka producer is not running"
    with pytest.raises(PublishError):
        await publish(bus, "1", b"{}")
    assert len((await describe(admin, kafka_topic))["partitions"]) == 1


async def test_existing_topic_with_enough_partitions_is_used(
    make_bus: BusFactory, admin: AIOKafkaAdminClient, kafka_bootstrap: str, kafka_topic: str
) -> None:
    await create_kafka_topic(kafka_bootstrap, kafka_topic, partitions=4)
    bus = make_bus(partitions=3)
    deliveries = collect(bus)
    await bus.start()
    assert len((await describe(admin, kafka_topic))["partitions"]) == 4
    await publish(bus, "5", b"x")
    (delivery,) = await take(deliveries, 1)
    assert (delivery.partition, delivery.offset) == (5 % 3, 0)


async def test_two_buses_start_on_the_same_new_topic(
    make_bus: BusFactory, admin: AIOKafkaAdminClient, kafka_topic: str
) -> None:
    first, second = make_bus(), make_bus()
    await asyncio.gather(start_creating(first), start_creating(second))
    assert len((await describe(admin, kafka_topic))["partitions"]) == 3


# Publishing and deliveries.


async def test_publish_reaches_listener_with_key_value_and_position(
    make_bus: BusFactory, created_kafka_topic: str
) -> None:
    bus = make_bus(partitions=3)
    deliveries = collect(bus)
    await bus.start()
    published: list[tuple[str, bytes]] = []
    for round_ in range(2):
        for room in range(1, 7):
            value = json.dumps({"room": room, "round": round_}).encode()
            await publish(bus, str(room), value)
            published.append((str(room), value))

    received = await take(deliveries, len(published))
    assert sorted((d.key, d.value) for d in received) == sorted(published)
    for delivery in received:
        assert delivery.partition == int(delivery.key) % 3
    for partition in range(3):
        in_partition = [d for d in received if d.partition == partition]
        # A fresh topic: each partition's records have offsets 0, 1, 2, ... in publish order.
        assert [d.offset for d in in_partition] == list(range(len(in_partition)))
        expected = [v for k, v in published if int(k) % 3 == partition]
        assert [d.value for d in in_partition] == expected
    assert deliveries.empty()


@pytest.mark.parametrize("fan_out_partitions", ["all", "interest"])
async def test_keyed_listener_gets_watched_keys_only(
    make_bus: BusFactory, created_kafka_topic: str, fan_out_partitions: str
) -> None:
    bus = make_bus(partitions=3, fan_out_partitions=fan_out_partitions)
    deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
    bus.add_listener(deliveries.put_nowait, keyed=True)
    await bus.start()
    started = bus.watch("4")
    if started is not None:
        await started
    for room in range(1, 7):  # room 4 shares partition 1 with room 1
        await publish(bus, str(room), f"room {room}".encode())
    (delivery,) = await take(deliveries, 1)
    assert (delivery.key, delivery.value) == ("4", b"room 4")
    bus.unwatch("4")
    await publish(bus, "4", b"room 4 again")
    await publish(bus, "2", b"room 2 again")
    await asyncio.sleep(0.5)
    assert deliveries.empty()
    counts = bus.fan_out_counts()
    if fan_out_partitions == "all":  # every record read, those of unwatched rooms dropped
        assert counts.fetched >= 6
        assert counts.fetched - counts.skipped == 1
    else:  # partition 1 only (rooms 1 and 4), until room 4 was unwatched
        assert (counts.fetched, counts.skipped, counts.partitions) == (2, 1, 0)


async def test_delivery_order_within_a_room(make_bus: BusFactory, created_kafka_topic: str) -> None:
    bus = make_bus()
    deliveries = collect(bus)
    await bus.start()
    values = [str(n).encode() for n in range(200)]
    await asyncio.gather(*(publish(bus, "7", value) for value in values))
    received = await take(deliveries, len(values))
    assert sorted(d.value for d in received) == sorted(values)
    assert [d.offset for d in received] == list(range(200))
    assert {d.partition for d in received} == {7 % 3}


async def test_records_of_room_land_in_room_mod_partitions(
    make_bus: BusFactory, kafka_bootstrap: str, created_kafka_topic: str
) -> None:
    kafka_topic = created_kafka_topic
    bus = make_bus(partitions=3)
    await bus.start()
    rooms = list(range(1, 13))
    for room in rooms:
        await publish(bus, str(room), f"room {room}".encode())

    records = await read_all(kafka_bootstrap, kafka_topic, 3, len(rooms))
    assert len(records) == len(rooms)
    for record in records:
        room = int(record.key.decode())
        assert record.value == f"room {room}".encode()
        assert record.partition == room % 3, record
    assert sorted(int(r.key) for r in records) == rooms


async def test_hash_partitioner_matches_partition_for(
    make_bus: BusFactory, kafka_bootstrap: str, created_kafka_topic: str
) -> None:
    kafka_topic = created_kafka_topic
    bus = make_bus(partitions=3, partitioner="hash")
    deliveries = collect(bus)
    await bus.start()
    rooms = list(range(1, 21))
    expected = {str(room): partition_for(str(room), 3, "hash") for room in rooms}
    # These rooms tell the partitioners apart.
    assert any(expected[str(room)] != room % 3 for room in rooms)
    for room in rooms:
        await publish(bus, str(room), b"v")

    received = await take(deliveries, len(rooms))
    assert {d.key: d.partition for d in received} == expected
    records = await read_all(kafka_bootstrap, kafka_topic, 3, len(rooms))
    assert {r.key.decode(): r.partition for r in records} == expected


async def test_check_is_none_when_up(make_bus: BusFactory, created_kafka_topic: str) -> None:
    bus = make_bus()
    assert await bus.check() == "the Kafka producer is not running"
    await bus.start()
    assert await bus.check() is None
    await bus.close()
    assert await bus.check() == "the Kafka producer is not running"


async def test_a_failing_listener_stops_no_delivery(
    make_bus: BusFactory, created_kafka_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = make_bus(partitions=3)

    def fail_on_poison(delivery: Delivery) -> None:
        if delivery.value == b"poison":
            raise RuntimeError("a listener's bug")

    bus.add_listener(fail_on_poison)
    deliveries = collect(bus)
    await bus.start()
    for value in (b"before", b"poison", b"after"):
        await publish(bus, "4", value)
    received = await take(deliveries, 3)
    assert [d.value for d in received] == [b"before", b"poison", b"after"]
    [failure] = [r for r in caplog.records if r.exc_info]
    assert failure.getMessage() == "listener failed on record 1:1 (key '4')"


# A record the gateway cannot read.


async def produce_to_room_4(bootstrap: str, topic: str, values: Iterable[bytes]) -> None:
    """Write ``values`` as another producer would, keyed and placed like room 4's records."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"4", partition=4 % 3)
    finally:
        await producer.stop()


async def test_unparseable_record_is_skipped_by_gateway_fan_out(
    make_gateway: GatewayFactory,
    kafka_bootstrap: str,
    created_kafka_topic: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kafka_topic = created_kafka_topic
    caplog.set_level(logging.WARNING, logger="gateway.chat.service")
    gateway = await make_gateway(kafka_bootstrap=kafka_bootstrap, kafka_topic=kafka_topic)
    deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
    gateway.bus.add_listener(deliveries.put_nowait)

    async with await StompTestClient.open(gateway.port) as client:
        await client.connect()
        await client.subscribe("/sub/chat/4")

        junk = [b"not json at all", b'{"chatRoomId": "four"}', b"\xff\xfe"]
        await produce_to_room_4(kafka_bootstrap, kafka_topic, junk)
        # The bus hands the junk to the fan-out ...
        junk_deliveries = await take(deliveries, 3)
        assert [d.offset for d in junk_deliveries] == [0, 1, 2]

        # ... which skips it; records after it are still delivered.
        await client.send_chat(4, chat_body("after the junk"))
        frame = await client.expect(Command.MESSAGE, timeout=WAIT)
        assert json.loads(frame.body)["message"] == "after the junk"
        assert frame.get("x-partition") == "1"
        assert frame.get("x-offset") == "3"
        assert await client.barrier() == []

    skipped = [r.getMessage() for r in caplog.records if "skipping record" in r.getMessage()]
    assert len(skipped) == 3, skipped
    assert skipped[0].startswith("skipping record 1:0 (key '4')")
    assert skipped[2].startswith("skipping record 1:2 (key '4')")


def foreign_record(**changes: Any) -> bytes:
    """A chat message in another producer's spacing: the fan-out parses it."""
    fields = {
        "id": "6727a1f0c3b5a24e1d9f0a11",
        "chatRoomId": 4,
        "memberId": 7,
        "nickname": "n",
        "message": "m",
        "createAt": "2024-01-01T00:00:00",
    }
    return json.dumps({**fields, **changes}).encode()


# Records another producer may write, each once a reason for the fan-out or the
# persister to stop: int() of 5,000 digits, recursion 3,000 levels deep, an id
# MongoDB cannot key by, a string BSON cannot carry.
HOSTILE_RECORDS = {
    "3000-deep": b'{"chatRoomId": 4, "x": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    "5000-digit-member": foreign_record().replace(b'"memberId": 7', b'"memberId": ' + b"9" * 5000),
    "id-not-an-object-id": foreign_record(id="x\nERROR\nmessage:forged"),
    "lone-surrogate": foreign_record(nickname="\ud800"),
}


@pytest.mark.parametrize("store", ["memory", pytest.param("mongo", marks=pytest.mark.mongo)])
async def test_hostile_records_are_skipped_by_fan_out_and_persister(
    make_gateway: GatewayFactory,
    kafka_bootstrap: str,
    created_kafka_topic: str,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
    store: str,
) -> None:
    caplog.set_level(logging.WARNING)
    mongo_uri = request.getfixturevalue("mongo_db_uri") if store == "mongo" else ""
    gateway = await make_gateway(
        kafka_bootstrap=kafka_bootstrap, kafka_topic=created_kafka_topic, mongo_uri=mongo_uri
    )
    async with await StompTestClient.open(gateway.port) as client:
        await client.connect()
        await client.subscribe("/sub/chat/4")
        await produce_to_room_4(kafka_bootstrap, created_kafka_topic, HOSTILE_RECORDS.values())

        await client.send_chat(4, chat_body("after the hostile records"))
        frame = await client.expect(Command.MESSAGE, timeout=WAIT)
        assert json.loads(frame.body)["message"] == "after the hostile records"
        assert frame.get("x-offset") == str(len(HOSTILE_RECORDS))

    async with asyncio.timeout(WAIT):
        while not await gateway.store.history(4, before=None, limit=10):
            await asyncio.sleep(0.05)
    [stored] = await gateway.store.history(4, before=None, limit=10)
    assert stored.message == "after the hostile records"
    lines = [r.getMessage() for r in caplog.records]
    assert sum(line.startswith("skipping record 1:") for line in lines) == len(HOSTILE_RECORDS)
    assert sum(line.startswith("not storing record 1:") for line in lines) == len(HOSTILE_RECORDS)
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


async def test_start_waits_for_a_just_created_topic(
    make_bus: BusFactory, kafka_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    The broker's answer to a DescribeTopics sent right after CreateTopics may
    not know the topic yet (seen here on the test broker: error 3,
    UNKNOWN_TOPIC_OR_PARTITION, with no partitions, for up to most of the
    topics created in a burst). That answer is replayed once, deterministically:
    start() must ask again rather than fail.
    """
    real = AIOKafkaAdminClient.describe_topics
    lagging = {kafka_topic}

    async def describe_topics(self: AIOKafkaAdminClient, topics: Any = None) -> Any:
        if topics and set(topics) & lagging:
            lagging.clear()
            return [{"error_code": 3, "topic": kafka_topic, "is_internal": False, "partitions": []}]
        return await real(self, topics)

    monkeypatch.setattr(AIOKafkaAdminClient, "describe_topics", describe_topics)
    bus = make_bus(partitions=3)
    deliveries = collect(bus)
    try:
        await bus.start()
    except BusError as exc:
        raise DescribeRace(str(exc)) from exc
    await publish(bus, "1", b"x")
    (delivery,) = await take(deliveries, 1)
    assert (delivery.partition, delivery.offset) == (1, 0)
