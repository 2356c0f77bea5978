"""
Writes to a store kept off the hot path, done in a task of their own and retried.

- :func:`retrying` awaits one write until it succeeds, with backoff: nothing
  accepted is dropped because the store was away for a while.
- :class:`WriteLoop` runs a ``flush`` shortly after each :meth:`~WriteLoop.poke`
  (so changes arriving together go in one batch), and every ``every`` seconds
  if asked: for callers that keep their pending changes themselves.

The gateway's persister retries its batches with :func:`retrying` too; the
queue that hands it batches in order is :class:`kafka_bridge.batch_queue.BatchQueue`
(kafka_bridge/ and persistence/ import nothing from each other).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from .store import StoreError

__all__ = ["WriteLoop", "retrying"]

logger = logging.getLogger(__name__)


def _never() -> bool:
    return False


async def retrying(
    write: Callable[[], Awaitable[None]],
    what: str,
    *,
    backoff: tuple[float, float],
    stopping: Callable[[], bool] = _never,
) -> bool:
    """
    Await ``write()`` until it returns: True then; False when it fails while
    ``stopping()`` (the failure is logged as an error).

    A :class:`StoreError` (the store is away) is logged as a warning without a
    traceback; anything else as an error with its traceback. A reason is logged
    once however often it recurs in a row, and the success after failures once.
    The delay between attempts doubles from ``backoff[0]`` up to ``backoff[1]``.
    """
    delay, most = backoff
    last_reason: str | None = None
    while True:
        try:
            await write()
        except Exception as exc:
            expected = isinstance(exc, StoreError)
            reason = str(exc) if expected else f"{type(exc).__name__}: {exc}"
            if stopping():
                logger.error("%s: given up at shutdown: %s", what, reason)
                return False
            if reason != last_reason:
                logger.log(
                    logging.WARNING if expected else logging.ERROR,
                    "%s failed, retrying with backoff up to %.1f s: %s",
                    what,
                    most,
                    reason,
                    exc_info=not expected,
                )
                last_reason = reason
        else:
            if last_reason is not None:
                logger.info("%s: done after retrying", what)
            return True
        await asyncio.sleep(delay)
        delay = min(delay * 2, most)


class WriteLoop:
    """
    Runs ``flush`` in a task of its own.

    Args:
        flush: Writes what is pending; retried (see :func:`retrying`) until it returns.
        name: For the task and the log.
        delay: Seconds to gather changes after a poke before flushing; the first backoff.
        every: Seconds between flushes without a poke (None: only on pokes).
        max_backoff: The longest wait between two attempts of a failing flush.

    """

    def __init__(
        self,
        flush: Callable[[], Awaitable[None]],
        name: str,
        *,
        delay: float = 0.05,
        every: float | None = None,
        max_backoff: float = 5.0,
    ) -> None:
        self.flush = flush
        self.name = name
        self.delay = delay
        self.every = every
        self.max_backoff = max_backoff
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    def poke(self) -> None:
        """Flush soon."""
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop the loop, then flush once more (a failure is logged)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await retrying(self.flush, self.name, backoff=(0, 0), stopping=lambda: True)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.every)
            await asyncio.sleep(self.delay)
            self._wakeup.clear()
            await retrying(self.flush, self.name, backoff=(self.delay, self.max_backoff))
