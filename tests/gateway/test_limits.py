"""Unit tests for :mod:`gateway.limits`."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.limits import ConnectionCounts, TokenBucket


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


@given(
    st.lists(st.tuples(st.floats(0, 2), st.integers(1, 5)), max_size=40),
    st.floats(0.5, 100),
    st.integers(1, 10),
)
def test_borrowed_events_are_delayed_to_the_rate(
    events: list[tuple[float, int]], rate: float, burst: int
) -> None:
    # Each caller waits out the delay before its events take place, as the
    # throttled reader does: then no window holds more than burst + rate x its length.
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    now = 0.0
    taking: list[tuple[float, int]] = []
    for gap, count in events:
        now += gap
        now += bucket.borrow(now, count)
        taking.append((now, count))
    for i, (start, _) in enumerate(taking):
        for end, _ in taking[i:]:
            taken = sum(count for at, count in taking if start <= at <= end)
            assert taken <= burst + rate * (end - start) + max(c for _, c in events) + 1e-6
