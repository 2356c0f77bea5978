"""
Reading a range of a partition back from Kafka (:meth:`KafkaBus.read_log`), for
recovery: the key's records only, in partition order, within the range; a
range the topic no longer retains, or a broker out of reach, is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from kafka_bridge import LogRange, LogUnavailable
from kafka_bridge import kafka as kafka_module
from kafka_bridge.kafka import LOG_READERS, KafkaBus, KafkaSettings
from kafka_bridge.log_reader import read_range
from tests.support.servers import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


@pytest.fixture
async def bus(kafka_bootstrap: str, created_kafka_topic: str) -> AsyncIterator[KafkaBus]:
    """
    A bus on this test's topic that published keys 4 and 7 (both partition 1)
    alternately: key 4 at even offsets 0 to 38, key 7 at odd offsets 1 to 39.
    """
    started = KafkaBus(KafkaSettings(bootstrap=kafka_bootstrap, topic=created_kafka_topic))
    await started.start()
    for n in range(20):
        for key in ("4", "7"):
            acknowledged = await started.publish(key, f"{key}-{n}".encode())
            await acknowledged
    yield started
    await started.close()


async def test_reads_the_keys_records_of_the_range_in_order(bus: KafkaBus) -> None:
    assert bus.partition_of("4") == bus.partition_of("7") == 1
    found = await bus.read_log("4", 5, 21, limit=100)
    assert [(r.key, r.value, r.partition, r.offset) for r in found.records] == [
        ("4", f"4-{n}".encode(), 1, 2 * n) for n in range(3, 11)
    ]
    assert found.end == 21
    to_the_end = await bus.read_log("7", 30, None, limit=100)
    assert [r.offset for r in to_the_end.records] == [31, 33, 35, 37, 39]
    assert to_the_end.end == 40
    assert (await bus.read_log("7", 40, None, limit=100)) == LogRange([], 40)


async def test_stops_after_limit_records_of_the_key(bus: KafkaBus) -> None:
    found = await bus.read_log("7", 0, None, limit=3)
    assert [r.offset for r in found.records] == [1, 3, 5]
    assert found.end == 6  # everything of the key before 6 was read, nothing after


async def test_a_range_no_longer_retained_is_refused(
    bus: KafkaBus, kafka_bootstrap: str, created_kafka_topic: str
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(created_kafka_topic, 1)
        await admin.delete_records({tp: RecordsToDelete(10)}, timeout_ms=10_000)
    finally:
        await admin.close()
    with pytest.raises(LogUnavailable, match="no longer retained"):
        await bus.read_log("4", 9, 20, limit=100)
    assert [r.offset for r in (await bus.read_log("4", 10, 20, limit=100)).records] == [
        10,
        12,
        14,
        16,
        18,
    ]


async def test_a_broker_out_of_reach_is_refused() -> None:
    unreachable = f"127.0.0.1:{free_port()}"
    with pytest.raises(LogUnavailable, match="cannot read"):
        await read_range(unreachable, TopicPartition("chat", 0), "4", 0, None, limit=10)


async def test_a_reconnect_storm_reads_at_most_log_readers_ranges_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reading: list[int] = []
    most = 0

    async def counted(*_: object) -> LogRange:
        nonlocal most
        reading.append(1)
        most = max(most, len(reading))
        await asyncio.sleep(0.01)
        reading.pop()
        return LogRange([], 0)

    monkeypatch.setattr(kafka_module, "read_range", counted)
    bus = KafkaBus(KafkaSettings(bootstrap="127.0.0.1:9"))  # never started: nothing connects
    await asyncio.gather(*(bus.read_log("4", 0, 10, limit=10) for _ in range(3 * LOG_READERS)))
    assert most == LOG_READERS
