"""The chat history, presence and connection log: MongoDB, or the in-memory defaults."""

from __future__ import annotations

from .bounded_json import InvalidJson, load_json
from .connections import ConnectionLog, InMemoryConnectionLog, LastConnect
from .memory import InMemoryStore
from .messages import (
    ChatMessage,
    ChatRow,
    InvalidMessage,
    id_and_room,
    is_long,
    load_object,
    local_date_time,
)
from .presence_store import InMemoryPresence, PresenceStore
from .store import MessageStore, StoreError

__all__ = [
    "ChatMessage",
    "ChatRow",
    "ConnectionLog",
    "InMemoryConnectionLog",
    "InMemoryPresence",
    "InMemoryStore",
    "InvalidJson",
    "InvalidMessage",
    "LastConnect",
    "MessageStore",
    "PresenceStore",
    "StoreError",
    "id_and_room",
    "is_long",
    "load_json",
    "load_object",
    "local_date_time",
]
