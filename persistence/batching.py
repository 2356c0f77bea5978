"""
A flush loop: writes that must stay off the hot path, batched and retried.

Callers record changes in memory and :meth:`FlushLoop.poke`; the loop runs the
flush shortly after (so changes arriving together go in one batch), again
every ``every`` seconds if asked, and with backoff while the store fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from .store import StoreError

__all__ = ["FlushLoop"]

logger = logging.getLogger(__name__)

MAX_BACKOFF = 5.0


class FlushLoop:
    """
    Runs ``flush`` in a task of its own.

    Args:
        flush: Writes what is pending; raises :class:`StoreError` to be retried.
        name: For the task and the log.
        delay: Seconds to gather changes after a poke before flushing.
        every: Seconds between flushes without a poke (None: only on pokes).

    """

    def __init__(
        self,
        flush: Callable[[], Awaitable[None]],
        name: str,
        *,
        delay: float = 0.05,
        every: float | None = None,
    ) -> None:
        self.flush = flush
        self.name = name
        self.delay = delay
        self.every = every
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    def poke(self) -> None:
        """Flush soon."""
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop the loop, then flush once more (failures are logged)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.flush()
        except Exception:
            logger.exception("%s: last flush failed", self.name)

    async def _run(self) -> None:
        backoff = self.delay
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.every)
            await asyncio.sleep(self.delay)
            self._wakeup.clear()
            try:
                await self.flush()
                backoff = self.delay
                continue
            except StoreError as exc:
                logger.warning("%s failed, retrying in %.1f s: %s", self.name, backoff, exc)
            except Exception:
                # Whatever the driver raises, the loop must live on: the
                # presence lease depends on it.
                logger.exception("%s failed, retrying in %.1f s", self.name, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            self._wakeup.set()
