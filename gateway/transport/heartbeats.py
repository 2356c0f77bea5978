"""
One timer for every session's heart-beats (STOMP 1.2 §Heart-beating).

One timer serves every session, so a beat costs no timer handle and no heap
operation of its own (bench/README.md has the figures). Sessions wait in slots
of :attr:`HeartBeatWheel.tick` seconds and the timer serves the earliest slot.
A session is filed in the slot its next deadline falls in, so it is looked at
up to one tick before it: a beat due within the tick is sent then (early,
never late, keeps the promise to send "at least every" interval), and a
silence deadline not yet reached is looked at again on the next tick (a
timeout noticed up to one tick late, within the tolerance anyway).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Protocol

__all__ = ["Beating", "Clock", "HeartBeatWheel", "tick_for"]

logger = logging.getLogger(__name__)

MAX_TICK = 1.0  # seconds
TICKS_PER_INTERVAL = 10  # slots within the shortest interval


def tick_for(*intervals_ms: int) -> float:
    """The tick for the given intervals (0: none): a tenth of the shortest, at most 1 s."""
    shortest = min((ms for ms in intervals_ms if ms > 0), default=0)
    return min(MAX_TICK, shortest / 1000 / TICKS_PER_INTERVAL) if shortest else MAX_TICK


class Beating(Protocol):
    """A session with heart-beats to send or check."""

    def heart_beat(self, now: float, horizon: float) -> float | None:
        """
        Send the beat due before ``horizon``, or close if the peer fell
        silent; return when to look again (None: never).
        """


class Timer(Protocol):
    """A pending call that can be called off, such as :class:`asyncio.TimerHandle`."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """What the wheel needs of an event loop: its clock and a timer."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object], /) -> Timer: ...


class HeartBeatWheel:
    """
    Calls :meth:`Beating.heart_beat` of each session when its deadline comes.

    The timer always stands at the earliest slot that holds a session, so no
    session waits for another's deadline.

    Args:
        tick: Width of a slot, in seconds.
        clock: The loop whose clock and timers to use (default: the running loop).

    """

    def __init__(self, tick: float, clock: Clock | None = None) -> None:
        self.tick = tick
        self._clock = clock
        self._slots: dict[int, dict[Beating, None]] = {}
        self._slot_of: dict[Beating, int] = {}
        self._timer: Timer | None = None
        self._armed_slot: int | None = None

    def __len__(self) -> int:
        return len(self._slot_of)

    def schedule(self, session: Beating, when: float) -> None:
        """Look at ``session`` around ``when`` (loop time), never in the current slot."""
        slot = self._file(session, when, math.floor(self._loop().time() / self.tick))
        if self._armed_slot is None or slot < self._armed_slot:
            self._arm(slot)

    def _loop(self) -> Clock:
        return self._clock if self._clock is not None else asyncio.get_running_loop()

    def _file(self, session: Beating, when: float, current: int) -> int:
        """Put ``session`` in the slot of ``when``, or the one after ``current``; return it."""
        self.cancel(session)
        slot = max(math.floor(when / self.tick), current + 1)
        self._slots.setdefault(slot, {})[session] = None
        self._slot_of[session] = slot
        return slot

    def cancel(self, session: Beating) -> None:
        """Forget ``session`` (it closed)."""
        slot = self._slot_of.pop(session, None)
        if slot is not None:
            sessions = self._slots[slot]
            del sessions[session]
            if not sessions:
                del self._slots[slot]

    def _arm(self, slot: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_slot = slot
        self._timer = self._loop().call_at(slot * self.tick, self._run)

    def _run(self) -> None:
        fired = self._armed_slot
        assert fired is not None
        self._timer = self._armed_slot = None
        now = self._loop().time()
        # The loop's clock may read a hair before the slot's start (millisecond timers).
        current = max(math.floor(now / self.tick), fired)
        for slot in sorted(slot for slot in self._slots if slot <= current):
            sessions = self._slots.pop(slot)
            for session in sessions:
                del self._slot_of[session]
                try:
                    when = session.heart_beat(now, now + self.tick)
                except Exception:  # one broken session must not stop the others' beats
                    logger.exception("heart-beat of %r failed", session)
                    continue
                if when is not None:
                    self._file(session, when, current)
        # Sessions filed just now may lie beyond slots that were pending already.
        if self._slots:
            self._arm(min(self._slots))
