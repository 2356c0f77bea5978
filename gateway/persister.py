"""The persister: writes every message the bus delivers to the store, in batches."""

from __future__ import annotations

import asyncio
import logging

from kafka_bridge import Delivery, MessageBus
from persistence import ChatMessage, InvalidMessage, MessageStore

__all__ = ["Persister"]

logger = logging.getLogger(__name__)


class Persister:
    """
    Buffers delivered messages and saves them in batches off the hot path.

    Args:
        bus: Source of messages.
        store: Destination of messages.
        batch_size: Most messages written in one call.

    """

    def __init__(self, bus: MessageBus, store: MessageStore, batch_size: int = 500) -> None:
        self.store = store
        self.batch_size = batch_size
        self._pending: list[ChatMessage] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        bus.add_listener(self._on_delivery)

    @property
    def lag(self) -> int:
        """Messages delivered and not yet saved."""
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="persister")

    async def close(self) -> None:
        """Save what is buffered, then stop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._pending:
            await self._flush()

    def _on_delivery(self, delivery: Delivery) -> None:
        try:
            self._pending.append(ChatMessage.from_json(delivery.value))
        except InvalidMessage:
            return  # logged by the fan-out, which reads the same record
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await self._flush()

    async def _flush(self) -> None:
        batch = self._pending[: self.batch_size]
        await self.store.save(batch)
        del self._pending[: len(batch)]
