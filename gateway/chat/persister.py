"""
The persister: writes every message the bus carries to the store, in batches.

With a shared store (MongoDB) it reads the bus as a durable listener (on
Kafka, its own consumer group with committed offsets), so a message is stored
once the bus has it, whichever instance received it and even after a crash;
the instances share the work. With a store of its own (in memory) each
instance stores every message the fan-out delivers, so its history is whole.
A batch is retried with backoff until the store takes it; writing is
idempotent by message id, so a replay stores nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from kafka_bridge import Delivery, MessageBus
from kafka_bridge.batch_queue import BatchQueue
from persistence import ChatMessage, InvalidMessage, MessageStore
from persistence.batching import retrying

__all__ = ["GROUP", "Persister"]

logger = logging.getLogger(__name__)

GROUP = "stomp-gateway-persister"
BACKOFF = (0.2, 30.0)  # seconds: the first and the longest wait before storing again
CHUNK = 500  # records parsed, encoded and inserted in one turn of the event loop


class Persister:
    """
    Saves what the bus delivers to the store.

    Args:
        bus: Source of messages.
        store: Destination of messages.

    """

    def __init__(self, bus: MessageBus, store: MessageStore) -> None:
        self.bus = bus
        self.store = store
        self._closing = False
        # With a store of its own: the deliveries not stored yet.
        self._local = BatchQueue(self._save, "persister")
        self._handed: dict[int, int] = {}  # per partition: the offset after the last collected
        if store.shared:
            bus.add_durable_listener(GROUP, self._save)
        else:
            bus.add_listener(self._collect)

    @property
    def lag(self) -> int:
        """Messages on the bus not yet in the store."""
        if self.store.shared:
            return self.bus.durable_lag()
        return len(self._local)

    async def stored_before(self, partition: int) -> int | None:
        """
        Return an offset of ``partition`` before which every record the bus
        carried is stored (for a store of this instance's own: every record
        since it started); None when unknown.
        """
        if self.store.shared:
            return await self.bus.durable_position(GROUP, partition)
        for delivery in self._local:
            if delivery.partition == partition:
                return delivery.offset  # records of a partition come in order
        return self._handed.get(partition)

    def start(self) -> None:
        if not self.store.shared:
            self._local.start()

    def stop_retrying(self) -> None:
        """From now on, what the store refuses stays on the bus only."""
        self._closing = True

    async def close(self) -> None:
        """Store what this instance still holds (once), then stop."""
        self._closing = True
        await self._local.close()

    def _collect(self, delivery: Delivery) -> None:
        self._local.add(delivery)
        self._handed[delivery.partition] = delivery.offset + 1

    async def _save(self, deliveries: list[Delivery]) -> None:
        """
        Store ``deliveries``; return once the store has them, or at shutdown.
        Whatever the store raises, the batch is retried: nothing the bus
        handed over is skipped.
        """
        chunks = [chunk async for chunk in _parsed_chunks(deliveries)]

        async def save_chunks() -> None:
            for chunk in chunks:  # each encoded in a loop turn of its own
                await self.store.save(chunk)

        count = sum(map(len, chunks))
        await retrying(
            save_chunks, f"storing {count} messages", backoff=BACKOFF, stopping=self._stopping
        )

    def _stopping(self) -> bool:
        return self._closing


async def _parsed_chunks(deliveries: list[Delivery]) -> AsyncIterator[list[ChatMessage]]:
    """
    The messages of ``deliveries``, CHUNK at a time, a chunk per loop turn, so
    that parsing a large Kafka batch never holds up the instance's connections.
    """
    for start in range(0, len(deliveries), CHUNK):
        chunk = deliveries[start : start + CHUNK]
        yield [message for message in map(_message, chunk) if message is not None]
        await asyncio.sleep(0)


def _message(delivery: Delivery) -> ChatMessage | None:
    try:
        return ChatMessage.from_json(
            delivery.value, partition=delivery.partition, offset=delivery.offset
        )
    except InvalidMessage as exc:
        # The fan-out logs the records it cannot read, but not one in its own
        # shape (which it delivers unparsed), and it may run in another instance.
        logger.warning(
            "not storing record %d:%d (key %r): %s",
            delivery.partition,
            delivery.offset,
            delivery.key,
            exc,
        )
        return None
