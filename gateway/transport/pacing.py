"""
One connection's SEND rate limit (``--send-rate-policy``: throttle the
reading, or reject over the rate) and the back-pressure that leaves the
client's socket unread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol

from gateway.metrics import Metrics
from protocol import Command, Frame, HeartBeatMonitor

from .handlers import Refusal
from .shared import ConnectionSettings, SendBudget, Shared

__all__ = ["Pacing", "charge"]


class _Connection(Protocol):
    """What pacing needs of its connection."""

    _holding: bool
    _loop: asyncio.AbstractEventLoop
    _metrics: Metrics
    _monitor: HeartBeatMonitor | None
    _sends: SendBudget
    _shared: Shared

    async def _unread(self, waiting: Awaitable[object]) -> None: ...


class Pacing:
    """The SEND rate part of :class:`gateway.transport.connection.StompConnection`."""

    __slots__ = ()
    _holding: bool  # a slot of the connection's

    async def _throttle(self: _Connection) -> None:
        """
        Charge a SEND, in a transaction or not, as it is read; over the rate,
        stop reading until the budget is out of debt (back-pressure, as
        RabbitMQ's flow control): nothing is refused, the client slows down.
        A transaction's SENDs are paced as they come, so any COMMIT can succeed.
        """
        delay = self._sends.borrow(self._loop.time())
        if delay:
            self._metrics.throttled_seconds += delay
            await self._unread(asyncio.sleep(delay))

    async def _unread(self: _Connection, waiting: Awaitable[object]) -> None:
        """
        Await ``waiting`` with the client's socket unread. Meanwhile what the
        client sent waits in the socket unseen, so its silence is not judged
        (STOMP 1.2 §Heart-beating counts any data received), and is timed
        afresh from when reading resumes.
        """
        self._holding = True
        try:
            await waiting
        finally:
            self._holding = False
            if self._monitor is not None:
                self._monitor.received(self._loop.time())

    def _charge(self: _Connection, effects: list[Frame]) -> None:
        """With ``--send-rate-policy reject``, :func:`charge` the SENDs about to take effect."""
        settings = self._shared.settings
        if settings.send_rate_policy == "reject":
            charge(self._sends, settings, effects, self._loop.time())


def charge(
    budget: SendBudget, settings: ConnectionSettings, effects: list[Frame], now: float
) -> None:
    """
    Charge the SENDs among ``effects``, about to take effect together (a
    COMMIT's); refuse them all, spending nothing, when ``budget`` lacks tokens.

    Raises:
        Refusal: Over the rate.

    """
    sends = sum(effect.command is Command.SEND for effect in effects)
    if sends > settings.send_burst:
        raise Refusal(
            f"rate limit exceeded: the transaction holds {sends} SENDs, "
            f"more than --send-burst {settings.send_burst}"
        )
    if sends and not budget.take(now, sends):
        raise Refusal(f"rate limit exceeded: at most {settings.send_rate:g} SENDs per second")
