"""
Reading a range of a partition back from Kafka, for recovery.

A short-lived consumer of no group is assigned the one partition, reads from
the first offset asked for to the last, and is stopped. Records of other keys
are skipped before their values are used. A range whose start the topic no
longer retains is refused rather than read from wherever the log now begins.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from .bus import Delivery, LogRange, LogUnavailable

__all__ = ["read_range"]

FETCH_WAIT_MS = 10  # the range is there already: no reason to hold a fetch back
POLL_MS = 500


async def read_range(
    bootstrap: str, partition: TopicPartition, key: str, start: int, end: int | None, limit: int
) -> LogRange:
    """
    Read the records keyed ``key`` at offsets ``start`` to ``end - 1`` of ``partition``.

    ``end`` None reads to the partition's end as of now. At most ``limit``
    records of the key are read; the range's ``end`` then stops after the last.

    Raises:
        LogUnavailable: The topic no longer retains ``start``, or Kafka cannot be read.

    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",  # a range deleted while it is read fails, never skips
        fetch_max_wait_ms=FETCH_WAIT_MS,
    )
    try:
        await consumer.start()
        consumer.assign([partition])
        return await _read(consumer, partition, key.encode(), start, end, limit)
    except KafkaError as exc:
        raise LogUnavailable(
            f"cannot read {partition.topic}[{partition.partition}]: {exc!r}"
        ) from exc
    finally:
        await consumer.stop()


async def _read(
    consumer: AIOKafkaConsumer,
    partition: TopicPartition,
    key: bytes,
    start: int,
    end: int | None,
    limit: int,
) -> LogRange:
    first = (await consumer.beginning_offsets([partition]))[partition]
    if start < first:
        raise LogUnavailable(
            f"{partition.topic}[{partition.partition}] begins at offset {first} now, "
            f"after {start}: the records before are no longer retained"
        )
    last = (await consumer.end_offsets([partition]))[partition]
    end = last if end is None else min(end, last)
    consumer.seek(partition, start)
    found: list[Delivery] = []
    while await consumer.position(partition) < end:
        batches = await consumer.getmany(partition, timeout_ms=POLL_MS)
        for record in batches.get(partition, []):
            if not start <= record.offset < end or record.key != key:
                continue
            found.append(
                Delivery(key.decode(), record.value or b"", record.partition, record.offset)
            )
            if len(found) >= limit:
                return LogRange(found, record.offset + 1)
    return LogRange(found, max(start, end))
