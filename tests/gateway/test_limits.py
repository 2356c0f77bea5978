"""Unit tests for :mod:`gateway.limits`."""

from __future__ import annotations

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
