"""The heart-beat wheel: one timer for every session's beats and silence checks."""

from __future__ import annotations

import asyncio

from gateway.heartbeats import MAX_TICK, HeartBeatWheel, tick_for


class Session:
    """Records when the wheel looked at it; comes back after ``every`` seconds, ``times`` times."""

    def __init__(self, every: float, times: int = 1) -> None:
        self.every = every
        self.left = times
        self.calls: list[tuple[float, float]] = []
        self.deadlines: list[float] = []  # what it asked for, the first set by the test

    def heart_beat(self, now: float, horizon: float) -> float | None:
        self.calls.append((now, horizon))
        self.left -= 1
        if not self.left:
            return None
        self.deadlines.append(now + self.every)
        return self.deadlines[-1]


def test_tick_is_a_tenth_of_the_shortest_interval_at_most_a_second() -> None:
    assert tick_for(1000, 10_000, 25_000) == 0.1
    assert tick_for(100_000, 0) == MAX_TICK
    assert tick_for(0, 0) == MAX_TICK  # nothing beats: any tick will do
    assert tick_for(20, 700, 0) == 0.002


async def test_sessions_are_looked_at_when_due_not_before_their_slot() -> None:
    loop = asyncio.get_running_loop()
    wheel = HeartBeatWheel(0.02)
    start = loop.time()
    early, late = Session(0.05, times=3), Session(0.0)
    early.deadlines.append(start + 0.05)
    wheel.schedule(early, start + 0.05)
    wheel.schedule(late, start + 0.15)
    assert len(wheel) == 2
    while len(wheel):
        await asyncio.sleep(0.01)
    assert len(early.calls) == 3
    assert len(late.calls) == 1
    for deadline, (now, horizon) in zip(early.deadlines, early.calls, strict=True):
        # Filed in the slot its deadline falls in: at most one tick early, so
        # a beat due within [now, horizon) goes out on time.
        assert now >= deadline - wheel.tick - 1e-3
        assert horizon == now + wheel.tick
    assert late.calls[0][0] >= start + 0.15 - wheel.tick - 1e-3


async def test_a_deadline_in_the_current_slot_comes_back_next_tick() -> None:
    loop = asyncio.get_running_loop()
    wheel = HeartBeatWheel(0.05)
    session = Session(0.0)
    scheduled = loop.time()
    wheel.schedule(session, scheduled - 1.0)  # overdue: not in a slot already past
    while len(wheel):
        await asyncio.sleep(0.01)
    [(now, _)] = session.calls
    assert now > scheduled


async def test_cancelled_and_rescheduled_sessions_are_looked_at_once() -> None:
    loop = asyncio.get_running_loop()
    wheel = HeartBeatWheel(0.01)
    gone, moved = Session(0.0), Session(0.0)
    wheel.schedule(gone, loop.time() + 0.02)
    wheel.schedule(moved, loop.time() + 0.02)
    wheel.schedule(moved, loop.time() + 0.06)
    wheel.cancel(gone)
    wheel.cancel(gone)  # twice is harmless
    assert len(wheel) == 1
    await asyncio.sleep(0.03)
    assert moved.calls == []
    while len(wheel):
        await asyncio.sleep(0.01)
    assert gone.calls == []
    assert len(moved.calls) == 1


async def test_a_failing_session_does_not_stop_the_others() -> None:
    loop = asyncio.get_running_loop()

    class Broken:
        def heart_beat(self, now: float, horizon: float) -> float | None:
            raise RuntimeError("broken")

    wheel = HeartBeatWheel(0.01)
    healthy = Session(0.0)
    wheel.schedule(Broken(), loop.time() + 0.02)
    wheel.schedule(healthy, loop.time() + 0.02)
    while len(wheel):
        await asyncio.sleep(0.01)
    assert len(healthy.calls) == 1
