"""The message bus between gateway instances: Kafka, or the in-memory default."""

from __future__ import annotations

from .bus import Delivery, Listener, MessageBus, PublishError
from .memory import InMemoryBus

__all__ = ["Delivery", "InMemoryBus", "Listener", "MessageBus", "PublishError"]
