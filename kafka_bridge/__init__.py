"""The message bus between gateway instances: Kafka, or the in-memory default."""

from __future__ import annotations

from .bus import (
    BusError,
    Delivery,
    FanOutCounts,
    Listener,
    LogRange,
    LogUnavailable,
    MessageBus,
    PublishError,
)
from .memory import InMemoryBus

__all__ = [
    "BusError",
    "Delivery",
    "FanOutCounts",
    "InMemoryBus",
    "Listener",
    "LogRange",
    "LogUnavailable",
    "MessageBus",
    "PublishError",
]
