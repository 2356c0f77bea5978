"""
The subscription registry: destination -> subscriptions, session -> subscriptions.

Both indexes change together, so every exit path of a session removes each of
its subscriptions exactly once (:meth:`SubscriptionRegistry.remove_session`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Protocol

from gateway.transport.handlers import Subscriber, Subscription

__all__ = ["Interest", "SubscriptionRegistry"]


class Interest(Protocol):
    """Told which destinations have local subscribers (the fan-out reads only theirs)."""

    def occupied(self, destination: str) -> Awaitable[None] | None:
        """A subscription to ``destination`` arrived; await the result before it is live."""

    def vacated(self, destination: str) -> None:
        """The last subscription to ``destination`` left."""


class SubscriptionRegistry:
    """Who is subscribed to what."""

    def __init__(self) -> None:
        self._by_destination: dict[str, dict[Subscription, None]] = {}
        self._by_session: dict[Subscriber, dict[str, Subscription]] = {}
        self._count = 0
        # Until an Interest is told: nobody to tell, nothing to wait for.
        self._occupied: Callable[[str], Awaitable[None] | None] = _nobody
        self._vacated: Callable[[str], None] = _nobody

    def tell(self, interest: Interest) -> None:
        """Tell ``interest`` from now on when destinations gain and lose subscribers."""
        self._occupied = interest.occupied
        self._vacated = interest.vacated

    def __len__(self) -> int:
        """Return the number of live subscriptions."""
        return self._count

    @property
    def destinations(self) -> int:
        """Return how many destinations have subscribers."""
        return len(self._by_destination)

    def add(self, subscription: Subscription) -> Awaitable[None] | None:
        """
        Register ``subscription``; its id must not be live in its session.

        Returns:
            What to await before the subscription is live, if anything
            (see :meth:`Interest.occupied`).

        """
        own = self._by_session.setdefault(subscription.session, {})
        assert subscription.id not in own, "subscription id already live"
        own[subscription.id] = subscription
        self._by_destination.setdefault(subscription.destination, {})[subscription] = None
        self._count += 1
        return self._occupied(subscription.destination)

    def remove(self, session: Subscriber, subscription_id: str) -> Subscription | None:
        """Remove and return the session's subscription with this id, if live."""
        own = self._by_session.get(session)
        subscription = None if own is None else own.pop(subscription_id, None)
        if subscription is not None:
            self._forget(subscription)
            if not own:
                del self._by_session[session]
        return subscription

    def remove_session(self, session: Subscriber) -> int:
        """Remove every subscription of ``session``; return how many there were."""
        own = self._by_session.pop(session, {})
        for subscription in own.values():
            self._forget(subscription)
        return len(own)

    def _forget(self, subscription: Subscription) -> None:
        subscribers = self._by_destination[subscription.destination]
        del subscribers[subscription]
        if not subscribers:
            del self._by_destination[subscription.destination]
            self._vacated(subscription.destination)
        self._count -= 1

    def subscribers(self, destination: str) -> Collection[Subscription]:
        """Return the subscriptions to ``destination``, in subscription order."""
        return self._by_destination.get(destination, {}).keys()

    def of(self, session: Subscriber, destination: str) -> list[Subscription]:
        """Return the session's subscriptions to ``destination``."""
        own = self._by_session.get(session, {})
        return [sub for sub in own.values() if sub.destination == destination]


def _nobody(destination: str) -> None:
    return None
