"""The chat history: MongoDB, or the in-memory default."""

from __future__ import annotations

from .memory import InMemoryStore
from .messages import ChatMessage, InvalidMessage, load_object
from .store import MessageStore, StoreError

__all__ = [
    "ChatMessage",
    "InMemoryStore",
    "InvalidMessage",
    "MessageStore",
    "StoreError",
    "load_object",
]
