"""Per-session and per-address limits that are not the protocol's own."""

from __future__ import annotations

from collections import Counter

__all__ = ["ConnectionCounts", "TokenBucket"]


class TokenBucket:
    """
    At most ``rate`` events per second on average, ``burst`` at once.

    Events are either refused when the bucket lacks tokens (:meth:`take`), or
    admitted into debt and delayed until it is repaid (:meth:`borrow`). Time
    is passed in, as seconds of a monotonic clock.
    """

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float, count: int = 1) -> bool:
        """Spend ``count`` tokens if there are as many; return whether there were."""
        self._refill(now)
        if self._tokens < count:
            return False
        self._tokens -= count
        return True

    def borrow(self, now: float) -> float:
        """
        Spend a token, into debt if need be; return the seconds until the
        bucket is out of debt, when the event may take place at the rate.
        """
        self._refill(now)
        self._tokens -= 1
        return max(0.0, -self._tokens / self.rate)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now


class ConnectionCounts:
    """Open connections per remote address, against a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def full(self, address: str) -> bool:
        """Whether ``address`` has as many connections open as it may."""
        return self._open[address] >= self.limit

    def opened(self, address: str) -> None:
        self._open[address] += 1

    def closed(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]
