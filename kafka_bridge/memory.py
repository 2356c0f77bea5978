"""The in-memory bus: one process, no broker; the zero-configuration default."""

from __future__ import annotations

import itertools

from .bus import Delivery, Listener

__all__ = ["InMemoryBus"]


class InMemoryBus:
    """
    Delivers each published record to the listeners before ``publish`` returns.

    Everything is in one partition, so the order of delivery is the order of
    publication.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._offsets = itertools.count()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def publish(self, key: str, value: bytes) -> None:
        delivery = Delivery(key, value, partition=0, offset=next(self._offsets))
        for listener in self._listeners:
            listener(delivery)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def check(self) -> str | None:
        return None
