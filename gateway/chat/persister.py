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
from persistence import ChatMessage, InvalidMessage, MessageStore, StoreError

__all__ = ["GROUP", "Persister"]

logger = logging.getLogger(__name__)

GROUP = "stomp-gateway-persister"
MAX_BACKOFF = 30.0
CHUNK = 500  # records parsed, encoded and inserted at once: about 5 ms of work


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
        self._local: list[Delivery] = []
        self._batch: list[Delivery] = []  # being stored
        self._handed: dict[int, int] = {}  # per partition: the offset after the last collected
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        if store.shared:
            bus.add_durable_listener(GROUP, self._save)
        else:
            bus.add_listener(self._collect)

    @property
    def lag(self) -> int:
        """Messages on the bus not yet in the store."""
        if self.store.shared:
            return self.bus.durable_lag()
        return len(self._local) + len(self._batch)

    async def stored_before(self, partition: int) -> int | None:
        """
        Return an offset of ``partition`` before which every record the bus
        carried is stored (for a store of this instance's own: every record
        since it started); None when unknown.
        """
        if self.store.shared:
            return await self.bus.durable_position(GROUP, partition)
        for delivery in (*self._batch, *self._local):
            if delivery.partition == partition:
                return delivery.offset  # records of a partition come in order
        return self._handed.get(partition)

    def start(self) -> None:
        if not self.store.shared:
            self._task = asyncio.create_task(self._run_local(), name="persister")

    def stop_retrying(self) -> None:
        """From now on, what the store refuses stays on the bus only."""
        self._closing = True

    async def close(self) -> None:
        """Store what this instance still holds (once), then stop."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._drain_local()

    def _collect(self, delivery: Delivery) -> None:
        self._local.append(delivery)
        self._handed[delivery.partition] = delivery.offset + 1
        self._wakeup.set()

    async def _run_local(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self._drain_local()

    async def _drain_local(self) -> None:
        while self._local:
            self._batch, self._local = self._local, []
            await self._save(self._batch)
            self._batch = []

    async def _save(self, deliveries: list[Delivery]) -> None:
        chunks = [chunk async for chunk in _parsed_chunks(deliveries)]
        messages = [message for chunk in chunks for message in chunk]
        delay = 0.2
        while True:
            try:
                for chunk in chunks:  # each encoded in a loop turn of its own
                    await self.store.save(chunk)
                return
            except StoreError as exc:
                if self._closing:
                    logger.error("%d messages not stored at shutdown: %s", len(messages), exc)
                    return
                logger.warning(
                    "cannot store %d messages (lag %d), retrying in %.1f s: %s",
                    len(messages),
                    self.lag,
                    delay,
                    exc,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)


async def _parsed_chunks(deliveries: list[Delivery]) -> AsyncIterator[list[ChatMessage]]:
    """
    The messages of ``deliveries``, CHUNK at a time, a chunk per loop turn: a
    Kafka batch of 5,000 records parsed in one go held every connection of
    the instance up for 50-170 ms.
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
