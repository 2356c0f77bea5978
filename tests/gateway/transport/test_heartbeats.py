"""The heart-beat wheel: one timer for every session's beats and silence checks."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.transport.heartbeats import MAX_TICK, HeartBeatWheel, tick_for
from protocol import HeartBeatMonitor


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


# A reference model of every session's deadlines, against a fake loop: no
# sockets, no real time, so hypothesis can try thousands of schedules.

EPSILON = 1e-9


class FakeTimer:
    """A timer of :class:`FakeLoop`."""

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def __lt__(self, other: FakeTimer) -> bool:
        return self.when < other.when

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """The clock and timers of an event loop; time moves only in :meth:`advance`."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[FakeTimer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object], /) -> FakeTimer:
        timer = FakeTimer(when, callback)
        heapq.heappush(self._timers, timer)
        return timer

    def advance(self, until: float) -> None:
        """Fire every timer due up to ``until``, each at its own time."""
        at_once = 0  # timers fired without the clock moving: a wheel that spins fails
        while self._timers and self._timers[0].when <= until:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                at_once = at_once + 1 if timer.when <= self.now else 0
                assert at_once < 1000, "the wheel re-arms for the instant it fired at"
                self.now = max(self.now, timer.when)
                timer.callback()
        self.now = until


class Peer:
    """A connection as the wheel sees it: the gateway's heart_beat, and what it did."""

    def __init__(self, monitor: HeartBeatMonitor, now: float) -> None:
        self.monitor = monitor
        self.beats_sent = [now]  # the session starts as if a beat had just gone out
        self.last_heard = now
        self.closed_at: float | None = None
        self.left_at: float | None = None

    def heart_beat(self, now: float, horizon: float) -> float | None:
        # What gateway.transport.connection.StompConnection.heart_beat does.
        if self.monitor.timed_out(now):
            self.closed_at = now
            return None
        if self.monitor.send_due(horizon):
            self.beats_sent.append(now)
            self.monitor.sent(now)
        return self.monitor.next_check()

    def hear(self, now: float) -> None:
        self.last_heard = now
        self.monitor.received(now)


Join = tuple[Literal["join"], float, int, int]  # after, send_ms, receive_ms
Act = tuple[Literal["leave", "beat"], float, int]  # after, which peer


def events(floor_ms: int) -> st.SearchStrategy[list[Join | Act]]:
    interval = st.one_of(st.just(0), st.integers(floor_ms, 10_000))
    after = st.floats(0, 5, allow_nan=False)
    join = st.tuples(st.just("join"), after, interval, interval)
    act = st.tuples(st.sampled_from(["leave", "beat"]), after, st.integers(0, 20))
    return st.lists(st.one_of(join, act), max_size=30)


@st.composite
def schedules(draw: st.DrawFn) -> tuple[int, float, list[Join | Act]]:
    floor_ms = draw(st.sampled_from([100, 250, 1000]))
    return floor_ms, draw(st.floats(1, 3)), draw(events(floor_ms))


@given(schedules())
@settings(max_examples=200, deadline=None, database=None)
def test_every_beat_on_time_and_every_silence_noticed_within_a_tick(
    schedule: tuple[int, float, list[Join | Act]],
) -> None:
    floor_ms, tolerance, steps = schedule
    loop = FakeLoop()
    wheel = HeartBeatWheel(tick_for(floor_ms), clock=loop)
    peers: list[tuple[Peer, int, int]] = []
    for step in steps:
        loop.advance(loop.now + step[1])
        if step[0] == "join":
            _, _, send_ms, receive_ms = step
            peer = Peer(HeartBeatMonitor(send_ms, receive_ms, tolerance, loop.now), loop.now)
            peers.append((peer, send_ms, receive_ms))
            if (deadline := peer.monitor.next_check()) is not None:
                wheel.schedule(peer, deadline)
        elif peers:
            peer = peers[step[2] % len(peers)][0]
            if peer.closed_at is None and peer.left_at is None:
                if step[0] == "leave":
                    peer.left_at = loop.now
                    wheel.cancel(peer)
                else:
                    peer.hear(loop.now)
    loop.advance(loop.now + 3 * 10 + 1)  # past every silence deadline
    for peer, send_ms, receive_ms in peers:
        end = next(time for time in (peer.closed_at, peer.left_at, loop.now) if time is not None)
        if send_ms:
            # STOMP 1.2 §Heart-beating: the server sends "at least every" send_ms.
            gaps = itertools.pairwise([*peer.beats_sent, end])
            assert all(later - earlier <= send_ms / 1000 + EPSILON for earlier, later in gaps)
        silence_deadline = peer.last_heard + receive_ms / 1000 * tolerance
        if not receive_ms:
            assert peer.closed_at is None
        elif peer.closed_at is not None:
            assert silence_deadline - EPSILON <= peer.closed_at
            assert peer.closed_at <= silence_deadline + wheel.tick + EPSILON
        else:
            assert peer.left_at is not None
            assert peer.left_at <= silence_deadline + wheel.tick + EPSILON
