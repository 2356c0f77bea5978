"""
A queue of deliveries handed to a :data:`~.bus.BatchHandler` a batch at a
time, in order, by a task of its own: the in-memory bus's durable listeners,
and the gateway's persister with a store of its own, are this queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from .bus import BatchHandler, Delivery

__all__ = ["BatchQueue"]


class BatchQueue:
    """
    Hands what :meth:`add` was given to ``handler``: all that is waiting, as
    one batch, once the batch before is done. The handler returns once its
    batch is done (it retries itself); deliveries added meanwhile wait.

    Args:
        handler: Takes one batch.
        name: Of the task.

    """

    def __init__(self, handler: BatchHandler, name: str) -> None:
        self.handler = handler
        self.name = name
        self._pending: list[Delivery] = []
        self._in_flight: list[Delivery] = []  # with the handler
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """Deliveries added whose batch is not done yet."""
        return len(self._in_flight) + len(self._pending)

    def __iter__(self) -> Iterator[Delivery]:
        """Deliveries added whose batch is not done yet, oldest first."""
        yield from self._in_flight
        yield from self._pending

    def add(self, delivery: Delivery) -> None:
        self._pending.append(delivery)
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def close(self) -> None:
        """Stop the task, then hand on what is waiting (including a batch cut short)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._drain()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self._drain()

    async def _drain(self) -> None:
        while self._in_flight or self._pending:
            if not self._in_flight:
                self._in_flight, self._pending = self._pending, []
            await self.handler(self._in_flight)
            self._in_flight = []
