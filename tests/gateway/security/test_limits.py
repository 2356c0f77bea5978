"""Unit tests for :mod:`gateway.security.limits`."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.security.limits import ConnectionCounts, TokenBucket


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.05) is False  # half a token
    assert bucket.take(0.1) is True
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]  # capped at burst


def test_token_bucket_ignores_a_clock_going_backwards() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=5.0)
    assert bucket.take(5.0) is True
    assert bucket.take(4.0) is False


def test_connection_counts() -> None:
    counts = ConnectionCounts(limit=2)
    counts.opened("a")
    assert not counts.full("a")
    counts.opened("a")
    assert counts.full("a")
    assert not counts.full("b")
    counts.closed("a")
    assert not counts.full("a")
    counts.closed("a")
    assert not counts.full("a")


def test_token_bucket_takes_several_at_once_or_none() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert bucket.take(0.0, 6) is False  # more than the bucket holds: nothing spent
    assert bucket.take(0.0, 5) is True
    assert bucket.take(0.0, 1) is False


@given(st.lists(st.floats(0, 0.5), max_size=60), st.floats(0.5, 100), st.integers(1, 10))
def test_borrowed_events_keep_to_the_rate(gaps: list[float], rate: float, burst: int) -> None:
    # Each event waits out the delay before taking place, as the throttled reader
    # does: no window then holds more than the burst plus the rate times its length.
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    now = 0.0
    times = []
    for gap in gaps:
        now += gap
        now += bucket.borrow(now)
        times.append(now)
    for first, start in enumerate(times):
        for last in range(first, len(times)):
            assert last - first + 1 <= burst + rate * (times[last] - start) + 1e-6
