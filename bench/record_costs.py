"""
What the fan-out spends per record aiokafka hands it: skipped by its key, read
for a room with no local subscriber (what each such record cost before records
were skipped by key), delivered to one subscriber (no socket). In-process, no
broker. With a broker, also what aiokafka spends per record to fetch and decode
it (a topic filled first, then read from its start as fast as the consumer
goes), and from both the seed model's ceiling: the records/s one core reads
when each instance reads every record, before and after the skip by key.

    .venv/bin/python -P bench/record_costs.py [RECORDS [BOOTSTRAP]]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
import zoneinfo
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gateway.chat.recovery import RecentMessages
from gateway.chat.registry import SubscriptionRegistry
from gateway.chat.routing import Router
from gateway.chat.service import ChatService
from gateway.transport.handlers import Subscription
from kafka_bridge.kafka import FAN_OUT_FETCH, KafkaBus, KafkaSettings
from persistence import ChatMessage

ROOMS = 2000
PARTITIONS = 64


def chat_value(room: int) -> bytes:
    return ChatMessage(
        id="0" * 24,
        chat_room_id=room,
        member_id=1,
        nickname="bench",
        message="x" * 100,
        create_at="2026-12-06T21:00:00",
    ).to_json()


def record_costs(count: int) -> dict[str, Any]:
    """
    Microseconds the fan-out spends per record aiokafka hands it (aiokafka's own
    fetch and decoding excluded): skipped by key, read for no subscriber, delivered.
    """
    bus = KafkaBus(KafkaSettings(bootstrap="unused:9092"))
    registry = SubscriptionRegistry()
    router = Router("/pub", ("/sub",), allow_broker_send=False)
    # The bus's only listener, as with MongoDB (whose persister reads as a consumer group).
    ChatService(
        bus,
        registry,
        router,
        zone=zoneinfo.ZoneInfo("UTC"),
        max_message_length=1000,
        max_nickname_length=100,
        recent=RecentMessages(10_000),
    )

    def records(room: int) -> list[ConsumerRecord[bytes, bytes]]:
        value = chat_value(room)
        return [
            ConsumerRecord("chat", 0, n, 0, 0, str(room).encode(), value, None, 2, len(value), [])
            for n in range(count)
        ]

    def per_record(batch: list[ConsumerRecord[bytes, bytes]]) -> float:
        started = time.process_time()
        for start in range(0, len(batch), 1000):  # the fan-out's batches
            bus._hand_on(batch[start : start + 1000])
        return round(1e6 * (time.process_time() - started) / len(batch), 3)

    skipped = per_record(records(1))
    bus.watch("2")  # what each record cost before the skip: read, then no subscriber
    unsubscribed = per_record(records(2))
    bus.watch("3")
    registry.add(_subscription(router.room_destination(3)))
    delivered = per_record(records(3))
    return {
        "scenario": "cluster",
        "step": "record-costs",
        "records": count,
        "us_per_skipped": skipped,
        "us_per_unsubscribed_read": unsubscribed,
        "us_per_delivered": delivered,
    }


async def filled_topic(bootstrap: str, count: int) -> str:
    """A new topic holding ``count`` chat records over the rooms."""
    topic = f"bench-read-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    await asyncio.sleep(1)  # the broker describes a new topic shortly after creating it
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        sent = [
            await producer.send(
                topic, chat_value(room), key=str(room).encode(), partition=room % PARTITIONS
            )
            for room in (1 + n % ROOMS for n in range(count))
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return topic


async def aiokafka_read_cost(bootstrap: str, topic: str, count: int) -> float:
    """Microseconds of this process's CPU per record a fan-out consumer fetches and decodes."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **FAN_OUT_FETCH)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        started, read = time.process_time(), 0
        while read < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
            read += sum(len(records) for records in batches.values())
        return 1e6 * (time.process_time() - started) / read
    finally:
        await consumer.stop()


def librdkafka_read_cost(bootstrap: str, topic: str, count: int) -> float | None:
    """The same through confluent-kafka (librdkafka's threads count too); None if not installed."""
    try:
        from confluent_kafka import Consumer
        from confluent_kafka import TopicPartition as Assigned
    except ImportError:
        return None
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-read", "enable.auto.commit": False}
    )
    try:
        consumer.assign([Assigned(topic, p, 0) for p in range(PARTITIONS)])  # from offset 0
        started, read = time.process_time(), 0
        while read < count:
            read += len(consumer.consume(num_messages=1000, timeout=1.0))
        return 1e6 * (time.process_time() - started) / read
    finally:
        consumer.close()


class _Sink:
    """A subscriber that takes MESSAGEs and drops them (no socket)."""

    def deliver(self, subscription: Any, template: Any) -> None:
        return None


def _subscription(destination: str) -> Subscription:
    return Subscription(session=_Sink(), id="0", destination=destination, ack_mode="auto", head=b"")


def main(argv: list[str]) -> dict[str, Any]:
    count = int(argv[0]) if argv else 200_000
    costs = record_costs(count)
    if len(argv) > 1:
        records = min(count, 20_000)
        topic = asyncio.run(filled_topic(argv[1], records))
        reading = asyncio.run(aiokafka_read_cost(argv[1], topic, records))
        costs["us_per_record_aiokafka"] = round(reading, 2)
        if (librdkafka := librdkafka_read_cost(argv[1], topic, records)) is not None:
            costs["us_per_record_librdkafka"] = round(librdkafka, 2)
        before = reading + costs["us_per_unsubscribed_read"]
        costs["seed_ceiling_records_per_core_s"] = round(1e6 / before)
        costs["skip_ceiling_records_per_core_s"] = round(1e6 / (reading + costs["us_per_skipped"]))
    return costs


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
