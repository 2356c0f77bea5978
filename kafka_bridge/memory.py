"""The in-memory bus: one process, no broker; the zero-configuration default."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable

from .batch_queue import BatchQueue
from .bus import BatchHandler, Delivery, FanOutCounts, Listener, LogRange, LogUnavailable

__all__ = ["InMemoryBus"]


@dataclasses.dataclass(frozen=True, slots=True)
class _Group:
    """A durable listener: the records it has not finished with."""

    name: str
    records: BatchQueue


class InMemoryBus:
    """
    Delivers each published record to the listeners before ``publish`` returns.

    Everything is in one partition, so the order of delivery is the order of
    publication. Offsets follow one another like a Kafka partition's (a
    missing offset is a missing record) from the microseconds since the epoch
    at the bus's creation, so they keep ordering messages across restarts of
    the process, in a store that outlives it. No log is kept: what the
    listeners were handed cannot be read back.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._groups: list[_Group] = []
        self._last_offset = time.time_ns() // 1000

    async def start(self) -> None:
        for group in self._groups:
            group.records.start()

    async def close(self) -> None:
        for group in self._groups:
            await group.records.close()

    async def publish(self, key: str, value: bytes) -> None:
        """Deliver at once: the record is as durable as it gets before this returns."""
        self._last_offset += 1
        delivery = Delivery(
            key, value, partition=0, offset=self._last_offset, timestamp=time.time()
        )
        for listener in self._listeners:
            listener(delivery)
        for group in self._groups:
            group.records.add(delivery)

    def add_listener(self, listener: Listener, *, keyed: bool = False) -> None:
        """Listeners get every record: there is nothing to fetch, nothing to save by skipping."""
        self._listeners.append(listener)

    def watch(self, key: str) -> Awaitable[None] | None:
        return None

    def unwatch(self, key: str) -> None:
        return None

    def fan_out_counts(self) -> FanOutCounts:
        return FanOutCounts()

    def add_durable_listener(self, group: str, handler: BatchHandler) -> None:
        self._groups.append(_Group(group, BatchQueue(handler, "durable-listener")))

    def durable_lag(self) -> int:
        return sum(len(group.records) for group in self._groups)

    async def durable_position(self, group: str, partition: int) -> int | None:
        """The first record the group has not finished with, or the next one to be published."""
        named = [g for g in self._groups if g.name == group]
        if not named:
            return None
        unfinished = [next(iter(g.records)).offset for g in named if g.records]
        return min(unfinished, default=self._last_offset + 1)

    def fan_out_lag(self) -> dict[int, int]:
        return {}  # listeners are called before publish returns

    async def check(self) -> str | None:
        return None

    def partition_of(self, key: str) -> int:
        return 0

    def fan_out_position(self, partition: int) -> int | None:
        return self._last_offset + 1  # listeners are called before publish returns

    async def read_log(self, key: str, start: int, end: int | None, limit: int) -> LogRange:
        raise LogUnavailable("the in-memory bus keeps no log")
