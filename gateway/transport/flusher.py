"""
One write-out per turn of the event loop for every connection with output queued.

Fan-out queues frames on many connections at once; instead of a writer task
per connection (a task, an event and a wake-up each, even when idle), the
connections that queued something are written out together by one callback,
after whatever else the loop had ready. Frames queued in the meantime leave
in the same WebSocket message (see :class:`gateway.transport.framing.RawFraming`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

__all__ = ["Flushable", "Flusher"]

logger = logging.getLogger(__name__)


class Flushable(Protocol):
    """A connection with output to write."""

    def flush(self) -> None:
        """Write what is queued without waiting; hand the rest to a task if the socket is full."""


class Flusher:
    """Calls :meth:`Flushable.flush` of each connection :meth:`add` was given, soon, once."""

    def __init__(self) -> None:
        self._due: list[Flushable] = []

    def add(self, connection: Flushable) -> None:
        """Flush ``connection`` on the loop's next turn; the caller adds it once until then."""
        if not self._due:
            asyncio.get_running_loop().call_soon(self._flush)
        self._due.append(connection)

    def _flush(self) -> None:
        due, self._due = self._due, []
        for connection in due:
            try:
                connection.flush()
            except Exception:  # one broken connection must not stall the others
                logger.exception("flushing %r failed", connection)
