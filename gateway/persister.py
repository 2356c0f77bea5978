"""
The persister: writes every message the bus carries to the store, in batches.

It reads the bus as a durable listener (on Kafka, its own consumer group with
committed offsets), so a message is stored once the bus has it, whichever
instance received it and even after a crash. A batch is retried with backoff
until the store takes it; only then does the bus move on. Writing is
idempotent by message id, so a replay stores nothing twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from kafka_bridge import Delivery, MessageBus
from persistence import ChatMessage, InvalidMessage, MessageStore, StoreError

__all__ = ["GROUP", "Persister"]

logger = logging.getLogger(__name__)

GROUP = "stomp-gateway-persister"
MAX_BACKOFF = 30.0


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
        bus.add_durable_listener(GROUP, self._save)

    @property
    def lag(self) -> int:
        """Messages on the bus not yet in the store."""
        return self.bus.durable_lag()

    def close(self) -> None:
        """Stop retrying: what the store refuses from now on stays on the bus only."""
        self._closing = True

    async def _save(self, deliveries: list[Delivery]) -> None:
        messages = [message for message in map(_message, deliveries) if message is not None]
        delay = 0.2
        while True:
            try:
                await self.store.save(messages)
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


def _message(delivery: Delivery) -> ChatMessage | None:
    try:
        message = ChatMessage.from_json(delivery.value)
    except InvalidMessage:
        return None  # logged by the fan-out, which reads the same record
    return dataclasses.replace(message, partition=delivery.partition, offset=delivery.offset)
