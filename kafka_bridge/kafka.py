"""
The Kafka bus: one partitioned topic, every instance reading every partition.

Each record is keyed by the room id and carries the chat message JSON; its
partition is ``roomId % partitions`` (the seed's scheme, ``modulo``), Kafka's
murmur2 of the key (``hash``) or nginx's ``hash`` of it (``nginx-hash``), so a
room's messages stay in order. The producer is idempotent with ``acks=all``:
``publish`` returns once the record is committed, hence readable by every
consumer. The fan-out consumer assigns itself partitions (no group, no
rebalancing), starts at their end, and hands each record to the listeners in
partition order.

Which partitions (``fan_out_partitions``): ``all`` of them (the seed's model),
or, with ``interest``, only those holding a watched key, re-assigned as keys
are watched and unwatched. When every listener is keyed, a record whose key is
not watched is dropped before it is turned into a :class:`Delivery`.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from .bus import BatchHandler, BusError, Delivery, FanOutCounts, Listener, LogRange, PublishError
from .log_reader import read_range
from .settings import KafkaSettings, Partitioner

__all__ = [
    "KafkaBus",
    "KafkaSettings",
    "Partitioner",
    "nginx_hash",
    "partition_for",
]

logger = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36

# Fetching in batches: each fetch costs a round trip and its parsing, so the
# broker holds a fetch until fetch_min_bytes are there or fetch_max_wait_ms is
# up (with fetch_min_bytes=1 it would answer each record with a fetch of its
# own under load): the wait bounds the latency this adds. The fan-out's is what a subscriber
# may notice; the persister's only delays storing (and is one stored batch).
FAN_OUT_FETCH = {"fetch_min_bytes": 64 * 1024, "fetch_max_wait_ms": 5}
PERSISTER_FETCH = {"fetch_min_bytes": 1024 * 1024, "fetch_max_wait_ms": 100}
PERSISTER_BATCH = 5000  # records; one offset commit each (the persister stores them in chunks)
# Bytes a producer batch of one partition holds: a full one makes send() wait
# until the batch in flight is acknowledged (aiokafka has one request in flight
# per broker), so under load this bounds the records per round trip.
PRODUCER_BATCH_BYTES = 256 * 1024  # well under the broker's message.max.bytes (1 MiB)
# Log reads for recovery at once: each is a consumer and its connections; a
# reconnect storm waits here (within its recovery timeout) instead.
LOG_READERS = 4


def partition_for(key: str, partitions: int, partitioner: str) -> int:
    """
    Return the partition of a record keyed ``key``.

    ``modulo`` is the seed's ``chatRoomId % partitions``; ``hash`` is what
    Kafka's Java producer does with a keyed record:
    ``toPositive(murmur2(key)) % partitions``; ``nginx-hash`` is
    :func:`nginx_hash` ``% partitions``.
    """
    if partitioner == "modulo":
        return int(key) % partitions
    if partitioner == "nginx-hash":
        return nginx_hash(key) % partitions
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def nginx_hash(key: str) -> int:
    """
    Return nginx's upstream ``hash`` of ``key`` (without ``consistent``).

    ngx_http_upstream_hash_module's first try is ``(crc32(key) >> 16) & 0x7fff``
    (Cache::Memcached's), and it picks the peer at ``hash % total_weight``. So
    with K equal-weight servers and P partitions, K dividing P, nginx sends a
    room to server ``partition % K``: every room of a partition to one server.
    """
    return (zlib.crc32(key.encode()) >> 16) & 0x7FFF


class KafkaBus:
    """
    A :class:`~kafka_bridge.bus.MessageBus` over a Kafka topic.

    Args:
        settings: Broker, topic and partitioning.

    """

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._listeners: list[Listener] = []
        self._durable: list[tuple[str, BatchHandler]] = []
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self._running = False  # between a successful start() and close()
        self._consumers: list[AIOKafkaConsumer] = []
        self._group_consumers: dict[str, AIOKafkaConsumer] = {}
        self._log_readers = asyncio.Semaphore(LOG_READERS)
        self._tasks: list[asyncio.Task[None]] = []
        self._lags: dict[str, int] = {}
        self._fan_out: AIOKafkaConsumer | None = None
        self._positions: dict[TopicPartition, int] = {}  # next offset the fan-out hands on
        self._everything = False  # some listener is not keyed: no record may be skipped
        self._watched: set[bytes] = set()  # record keys the keyed listeners want
        self._wanted: dict[TopicPartition, int] = {}  # interest: watched keys per partition
        self._counts = FanOutCounts()

    def add_listener(self, listener: Listener, *, keyed: bool = False) -> None:
        self._listeners.append(listener)
        self._everything = self._everything or not keyed

    def watch(self, key: str) -> Awaitable[None] | None:
        encoded = key.encode()
        if not self._by_interest():
            self._watched.add(encoded)
            return None
        partition = self._topic_partition(key)
        if encoded not in self._watched:
            self._watched.add(encoded)
            self._wanted[partition] = self._wanted.get(partition, 0) + 1
            if self._wanted[partition] == 1:
                self._reassign()
        if partition in self._positions or self._fan_out is None:
            return None
        return self._started(self._fan_out, partition)

    def unwatch(self, key: str) -> None:
        encoded = key.encode()
        if encoded not in self._watched:
            return
        self._watched.discard(encoded)
        if not self._by_interest():
            return
        partition = self._topic_partition(key)
        self._wanted[partition] -= 1
        if not self._wanted[partition]:
            del self._wanted[partition]
            self._reassign()

    def fan_out_counts(self) -> FanOutCounts:
        return self._counts

    def _by_interest(self) -> bool:
        """Whether the fan-out reads only the partitions of watched keys."""
        return self.settings.fan_out_partitions == "interest" and not self._everything

    def _topic_partition(self, key: str) -> TopicPartition:
        settings = self.settings
        return TopicPartition(
            settings.topic, partition_for(key, settings.partitions, settings.partitioner)
        )

    def _reassign(self) -> None:
        """
        Fetch the wanted partitions: those fetched already go on from the
        record after the last one handed on, a new one starts at its end
        (the consumer's ``auto_offset_reset``).
        """
        consumer = self._fan_out
        if consumer is None:
            return  # start() assigns what is wanted by then
        consumer.assign(sorted(self._wanted, key=lambda tp: tp.partition))
        for partition in list(self._positions):
            if partition in self._wanted:
                consumer.seek(partition, self._positions[partition])
            else:
                del self._positions[partition]
        self._counts.partitions = len(self._wanted)

    async def _started(self, consumer: AIOKafkaConsumer, partition: TopicPartition) -> None:
        """Wait until the fan-out knows where a newly fetched partition starts."""
        try:
            async with asyncio.timeout(self.settings.send_timeout):
                position = await consumer.position(partition)
        except (KafkaError, TimeoutError) as exc:
            if partition in self._wanted:  # else unwatched meanwhile: nothing to start
                logger.warning("fan-out cannot start partition %d: %r", partition.partition, exc)
            return
        if partition in self._wanted:
            self._positions.setdefault(partition, position)

    def add_durable_listener(self, group: str, handler: BatchHandler) -> None:
        self._durable.append((group, handler))

    def durable_lag(self) -> int:
        return sum(self._lags.values())

    def fan_out_lag(self) -> dict[int, int]:
        """Each partition's high-water mark (as of the last fetch) minus the fan-out's position."""
        if self._fan_out is None:
            return {}
        lags = {}
        for partition, position in self._positions.items():
            highwater = self._fan_out.highwater(partition)
            if highwater is not None:
                lags[partition.partition] = max(0, highwater - position)
        return lags

    async def start(self) -> None:
        """
        Make sure the topic exists, then start the producer and the consumer.

        Raises:
            BusError: Kafka cannot be reached, or the topic has too few partitions.

        """
        try:
            partitions = await self._provision_topic()
            self._producer = self._new_producer()
            await self._producer.start()
            fan_out = await self._start_consumer(partitions)
            groups = [(await self._start_group(group), handler) for group, handler in self._durable]
        except KafkaError as exc:
            await self.close()
            raise BusError(f"cannot use Kafka at {self.settings.bootstrap}: {exc}") from exc
        self._running = True
        self._tasks.append(asyncio.create_task(self._consume(fan_out), name="kafka-fan-out"))
        for (group, _), (consumer, handler) in zip(self._durable, groups, strict=True):
            task = self._consume_durably(group, consumer, handler)
            self._tasks.append(asyncio.create_task(task, name=f"kafka-group-{group}"))
        if self.settings.fan_out_partitions == "interest" and self._everything:
            logger.warning(
                "the fan-out reads every partition: a listener needs every record "
                "(the in-memory store's persister; give --mongo-uri)"
            )
        logger.info(
            "kafka bus ready: topic %s, %d partitions, %s partitioner",
            self.settings.topic,
            len(partitions),
            self.settings.partitioner,
        )

    async def _provision_topic(self) -> list[int]:
        """Create the topic if it is missing; return its partitions."""
        settings = self.settings
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
        await admin.start()
        try:
            # list_topics() asks for no topic by name, so it cannot auto-create one.
            if settings.topic not in await admin.list_topics():
                await self._create_topic(admin)
            partitions = await _partitions(admin, settings.topic)
        finally:
            await admin.close()
        if len(partitions) < settings.partitions:
            raise BusError(
                f"topic {settings.topic!r} has {len(partitions)} partitions but "
                f"--kafka-partitions is {settings.partitions}: records would be mis-routed; "
                "add partitions to the topic or lower --kafka-partitions"
            )
        return partitions

    async def _create_topic(self, admin: AIOKafkaAdminClient) -> None:
        settings = self.settings
        topic = NewTopic(settings.topic, settings.partitions, settings.replication_factor)
        response = await admin.create_topics([topic])
        for name, code, *message in response.topic_errors:
            if code not in (0, _TOPIC_ALREADY_EXISTS):  # another instance may have won
                raise BusError(f"cannot create topic {name!r}: error {code} {message}")
        logger.info(
            "created topic %s with %d partitions, replication factor %d",
            settings.topic,
            settings.partitions,
            settings.replication_factor,
        )

    async def _start_consumer(self, partitions: Sequence[int]) -> AIOKafkaConsumer:
        consumer = await self._started_consumer(
            group_id=None, auto_offset_reset="latest", **FAN_OUT_FETCH
        )
        if self._by_interest():
            assigned = list(self._wanted)
        else:
            assigned = [TopicPartition(self.settings.topic, p) for p in partitions]
        consumer.assign(assigned)
        if assigned:
            await consumer.seek_to_end(*assigned)
        for partition in assigned:
            # Resolve the end now, so no record published after start() is missed.
            self._positions[partition] = await consumer.position(partition)
        self._counts.partitions = len(assigned)
        self._fan_out = consumer
        return consumer

    async def _start_group(self, group: str) -> AIOKafkaConsumer:
        # A group with no committed offsets starts at the oldest record: a
        # first deployment stores what the topic still holds.
        consumer = await self._started_consumer(
            self.settings.topic, group_id=group, auto_offset_reset="earliest", **PERSISTER_FETCH
        )
        self._group_consumers[group] = consumer
        return consumer

    async def _started_consumer(self, *topics: str, **options: Any) -> AIOKafkaConsumer:
        """Start a consumer (committing only by hand), closed with the bus."""
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self.settings.bootstrap,
            enable_auto_commit=False,
            **options,
        )
        await consumer.start()
        self._consumers.append(consumer)
        return consumer

    async def _consume_durably(
        self, group: str, consumer: AIOKafkaConsumer, handler: BatchHandler
    ) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=PERSISTER_BATCH)
            records = [_delivery(record) for batch in batches.values() for record in batch]
            if records:
                await handler(records)  # it retries until the batch is done
                try:
                    await consumer.commit()
                except KafkaError as exc:  # the batch will be replayed; harmless
                    logger.warning("group %s cannot commit offsets: %s", group, exc)
            self._lags[group] = await _lag(consumer)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
            for partition, records in batches.items():
                self._hand_on(records)
                if records:
                    self._positions[partition] = records[-1].offset + 1

    def _hand_on(self, records: list[ConsumerRecord[Any, Any]]) -> None:
        """Deliver the records, but those whose key no keyed listener watches."""
        counts = self._counts
        counts.fetched += len(records)
        counts.bytes += sum(record.serialized_value_size for record in records)
        if self._everything:
            for record in records:
                self._deliver(record)
            return
        watched = self._watched
        for record in records:
            key = record.key
            if key is not None and key not in watched:
                counts.skipped += 1  # dropped before its value is looked at
                continue
            self._deliver(record)

    def _deliver(self, record: ConsumerRecord[Any, Any]) -> None:
        delivery = _delivery(record)
        for listener in self._listeners:
            try:
                listener(delivery)
            except Exception:  # a bug must not stop every room's fan-out: report it, go on
                logger.exception(
                    "listener failed on record %d:%d (key %r)",
                    delivery.partition,
                    delivery.offset,
                    delivery.key,
                )

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=1,
            max_batch_size=PRODUCER_BATCH_BYTES,
            request_timeout_ms=int(self.settings.send_timeout * 1000),
        )

    async def _current_producer(self) -> AIOKafkaProducer:
        """Return the producer, starting a new one if the last was retired."""
        if not self._running:
            raise PublishError("the Kafka producer is not running")
        async with self._producer_lock:
            if self._producer is None:
                producer = self._new_producer()
                try:
                    await producer.start()
                except KafkaError as exc:
                    await producer.stop()
                    raise PublishError(f"cannot reach Kafka: {exc!r}") from exc
                self._producer = producer
            return self._producer

    def _retire(self, producer: AIOKafkaProducer) -> None:
        """
        Replace a producer that failed a send.

        An idempotent producer numbers its records; a batch that expired while
        the broker was away leaves those numbers out of step, and aiokafka
        0.14 then fails every later send with OutOfOrderSequenceNumber. A new
        producer gets a new producer id and starts its numbering afresh.
        """
        retired = self._producer
        if retired is None or retired is not producer:
            return  # another failed send retired it already
        self._producer = None
        task = asyncio.create_task(retired.stop())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def publish(self, key: str, value: bytes) -> Awaitable[None]:
        producer = await self._current_producer()
        partition = partition_for(key, self.settings.partitions, self.settings.partitioner)
        try:
            sent = await producer.send(
                self.settings.topic, value, key=key.encode(), partition=partition
            )
        except KafkaError as exc:
            self._retire(producer)
            raise PublishError(f"Kafka did not take the message: {exc!r}") from exc
        return self._acknowledged(producer, sent)

    async def _acknowledged(self, producer: AIOKafkaProducer, sent: Awaitable[Any]) -> None:
        """Wait until Kafka acknowledged a record (acks=all: it is readable then)."""
        try:
            # The producer expires the batch after request_timeout_ms; the
            # extra second only guards against a future that never resolves.
            # (asyncio.timeout arms a timer; wait_for would add a task per message.)
            async with asyncio.timeout(self.settings.send_timeout + 1):
                await sent
        except (KafkaError, TimeoutError) as exc:
            self._retire(producer)
            raise PublishError(f"Kafka did not acknowledge the message: {exc!r}") from exc

    async def check(self) -> str | None:
        try:
            producer = await self._current_producer()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), 2)
        except PublishError as exc:
            return str(exc) if not self._running else f"Kafka is unreachable: {exc}"
        except (KafkaError, TimeoutError) as exc:
            return f"Kafka at {self.settings.bootstrap} is unreachable: {exc!r}"
        return None

    async def durable_position(self, group: str, partition: int) -> int | None:
        """The group's committed offset: it commits once a batch is handled."""
        consumer = self._group_consumers.get(group)
        if consumer is None:
            return None
        try:
            committed = await consumer.committed(TopicPartition(self.settings.topic, partition))
        except KafkaError as exc:
            logger.warning("cannot read the committed offsets of group %s: %s", group, exc)
            return None
        return None if committed is None else int(committed)

    def partition_of(self, key: str) -> int:
        return partition_for(key, self.settings.partitions, self.settings.partitioner)

    def fan_out_position(self, partition: int) -> int | None:
        return self._positions.get(TopicPartition(self.settings.topic, partition))

    async def read_log(self, key: str, start: int, end: int | None, limit: int) -> LogRange:
        """Read a range back from Kafka with a consumer of its own; see :func:`read_range`."""
        partition = TopicPartition(self.settings.topic, self.partition_of(key))
        async with self._log_readers:
            return await read_range(self.settings.bootstrap, partition, key, start, end, limit)

    async def close(self) -> None:
        self._running = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._producer is not None:
            await self._producer.stop()  # flushes what was published
            self._producer = None
        await asyncio.gather(*self._retiring, return_exceptions=True)
        for consumer in self._consumers:
            await consumer.stop()
        self._consumers = []
        self._group_consumers = {}
        self._fan_out = None
        self._positions.clear()


def _delivery(record: ConsumerRecord[Any, Any]) -> Delivery:
    key = record.key.decode(errors="replace") if record.key is not None else ""
    timestamp = record.timestamp / 1000 if record.timestamp is not None else 0.0
    return Delivery(key, record.value or b"", record.partition, record.offset, timestamp)


async def _lag(consumer: AIOKafkaConsumer) -> int:
    """Records of the consumer's partitions after its position."""
    lag = 0
    for partition in consumer.assignment():
        highwater = consumer.highwater(partition)
        if highwater is not None:
            lag += max(0, highwater - await consumer.position(partition))
    return lag


async def _partitions(admin: AIOKafkaAdminClient, topic: str, attempts: int = 20) -> list[int]:
    """Return the topic's partitions, waiting for a topic the broker is still creating."""
    for _ in range(attempts):
        for description in await admin.describe_topics([topic]):
            if description["topic"] == topic and not description["error_code"]:
                return sorted(p["partition"] for p in description["partitions"])
        await asyncio.sleep(0.25)  # CreateTopics returned; metadata follows shortly
    raise BusError(f"topic {topic!r} cannot be described")
