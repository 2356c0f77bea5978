"""PresenceTracker: the store hears of a member's first join and last leave only."""

from __future__ import annotations

from gateway.chat.presence import PresenceTracker
from gateway.chat.routing import Router
from persistence import InMemoryConnectionLog, InMemoryPresence


async def test_counts_sessions_and_subscriptions() -> None:
    store = InMemoryPresence()
    router = Router("/pub", ("/sub",), allow_broker_send=False)
    tracker = PresenceTracker(store, router, log=InMemoryConnectionLog())
    tab1, tab2 = object(), object()
    tracker.subscribed(tab1, 7, "/sub/chat/4")
    tracker.subscribed(tab1, 7, "/sub/chat/4")  # a duplicate subscription (allow)
    tracker.subscribed(tab2, 7, "/sub/chat/4")
    tracker.subscribed(tab2, 7, "/sub/pong")  # not a room
    assert await store.members(4) == [7]
    tracker.unsubscribed(tab1, "/sub/chat/4")
    tracker.closed(tab2)
    assert await store.members(4) == [7]  # tab 1 still has one subscription
    tracker.unsubscribed(tab1, "/sub/chat/4")
    assert await store.members(4) == []
    tracker.unsubscribed(tab1, "/sub/chat/4")  # nothing left: ignored
    tracker.closed(tab1)
    assert await store.members(4) == []
