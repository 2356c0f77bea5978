"""
The chat's identifiers and timestamps, one rule each, as the seed's Spring
backend defines them (shared/seed-contract.md):

- a room id in text (a destination, a URL path): :func:`parse_room_id`, a
  positive decimal integer without leading zeros that fits a Java long;
- a member id, from JSON or text (a message body, a token claim, a query):
  :func:`long_id`, a Java long, or its decimal digits as a string; the same
  rule reads the room ids a token's rooms claim lists;
- a message id: a MongoDB ObjectId in lowercase hex (:data:`OBJECT_ID`,
  :func:`new_object_id`);
- ``createAt``: a local date-time without offset (:func:`local_date_time`).

The store reads and writes ids and ``createAt`` as well, and persistence/
imports nothing from gateway/: :func:`persistence.is_long` (a Java long is
BSON's int64) and :func:`persistence.local_date_time` are defined there, and
this module is where the gateway takes them from.
"""

from __future__ import annotations

import itertools
import os
import re
import time

from gateway.numbers import saturating_int
from persistence import is_long, local_date_time

__all__ = [
    "MAX_ROOM_ID",
    "OBJECT_ID",
    "InvalidId",
    "local_date_time",
    "long_id",
    "new_object_id",
    "parse_room_id",
]

MAX_ROOM_ID = 2**63 - 1  # the seed's rooms are Java longs
OBJECT_ID = re.compile(r"[0-9a-f]{24}")  # as new_object_id writes it

_PROCESS_UNIQUE = os.urandom(5)
_COUNTER = itertools.count(int.from_bytes(os.urandom(3), "big"))


class InvalidId(ValueError):
    """An identifier that breaks its rule; the message says which and why."""


def parse_room_id(text: str) -> int:
    """
    Return the room id in ``text``: a positive integer that fits a Java long.

    Raises:
        InvalidId: Anything else.

    """
    if not (text.isascii() and text.isdigit()) or text.startswith("0"):
        raise InvalidId(f"invalid room id {text[:40]!r}: expected a positive integer")
    room_id = saturating_int(text, MAX_ROOM_ID + 1)
    if room_id > MAX_ROOM_ID:
        raise InvalidId(f"invalid room id {text[:40]!r}: too large")
    return room_id


def long_id(value: object) -> int | None:
    """
    Return the id ``value`` carries: an integer that fits a Java long, or a
    string of decimal digits whose value does; None for anything else
    (``bool`` included, though Python counts it an ``int``).
    """
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = saturating_int(value, MAX_ROOM_ID + 1)
    if isinstance(value, int) and not isinstance(value, bool) and is_long(value):
        return value
    return None


def new_object_id(now: float | None = None) -> str:
    """Return a fresh MongoDB ObjectId in hex: time, process, counter."""
    seconds = int(time.time() if now is None else now) & 0xFFFFFFFF
    counter = next(_COUNTER) & 0xFFFFFF
    return (seconds.to_bytes(4, "big") + _PROCESS_UNIQUE + counter.to_bytes(3, "big")).hex()
