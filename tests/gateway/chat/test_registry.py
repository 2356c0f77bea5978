"""Unit tests for :mod:`gateway.chat.registry`."""

from __future__ import annotations

from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.chat.registry import SubscriptionRegistry
from gateway.transport.handlers import Subscription
from protocol import MessageTemplate


class FakeSession:
    """A subscriber that records what it is given."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.delivered: list[tuple[Subscription, MessageTemplate]] = []

    def deliver(self, subscription: Subscription, template: MessageTemplate) -> None:
        self.delivered.append((subscription, template))

    def __repr__(self) -> str:
        return f"FakeSession({self.name!r})"


def sub(
    session: FakeSession, sub_id: str, destination: str, ack_mode: str = "auto"
) -> Subscription:
    return Subscription(
        session=session, id=sub_id, destination=destination, ack_mode=ack_mode, head=b""
    )


def test_empty() -> None:
    registry = SubscriptionRegistry()
    assert len(registry) == 0
    assert registry.destinations == 0
    assert list(registry.subscribers("/sub/x")) == []
    session = FakeSession("a")
    assert registry.of(session, "/sub/x") == []
    assert registry.remove(session, "1") is None
    assert registry.remove_session(session) == 0


def test_add_and_indexes() -> None:
    registry = SubscriptionRegistry()
    alice, bob = FakeSession("alice"), FakeSession("bob")
    a1 = sub(alice, "1", "/sub/chat/1")
    a2 = sub(alice, "2", "/sub/chat/2")
    b1 = sub(bob, "1", "/sub/chat/1")  # ids are per session
    for subscription in (a1, a2, b1):
        registry.add(subscription)
    assert len(registry) == 3
    assert registry.destinations == 2
    assert registry.of(alice, "/sub/chat/2") == [a2]
    assert registry.of(bob, "/sub/chat/1") == [b1]
    assert registry.of(bob, "/sub/chat/2") == []
    assert list(registry.subscribers("/sub/chat/1")) == [a1, b1]
    assert list(registry.subscribers("/sub/chat/2")) == [a2]
    assert registry.of(alice, "/sub/chat/1") == [a1]
    assert registry.of(bob, "/sub/chat/2") == []


def test_subscribers_in_subscription_order() -> None:
    registry = SubscriptionRegistry()
    sessions = [FakeSession(str(n)) for n in range(10)]
    subscriptions = [sub(session, "s", "/sub/room") for session in reversed(sessions)]
    for subscription in subscriptions:
        registry.add(subscription)
    assert list(registry.subscribers("/sub/room")) == subscriptions


def test_same_destination_twice_in_a_session() -> None:
    registry = SubscriptionRegistry()
    alice = FakeSession("alice")
    first, second = sub(alice, "1", "/sub/x"), sub(alice, "2", "/sub/x")
    registry.add(first)
    registry.add(second)
    assert registry.of(alice, "/sub/x") == [first, second]
    assert len(registry) == 2
    assert registry.destinations == 1


def test_duplicate_id_is_refused() -> None:
    registry = SubscriptionRegistry()
    alice = FakeSession("alice")
    registry.add(sub(alice, "1", "/sub/x"))
    with pytest.raises(AssertionError):
        registry.add(sub(alice, "1", "/sub/y"))


def test_remove() -> None:
    registry = SubscriptionRegistry()
    alice = FakeSession("alice")
    a1, a2 = sub(alice, "1", "/sub/x"), sub(alice, "2", "/sub/y")
    registry.add(a1)
    registry.add(a2)
    assert registry.remove(alice, "1") is a1
    assert registry.remove(alice, "1") is None
    assert len(registry) == 1
    assert registry.destinations == 1
    assert list(registry.subscribers("/sub/x")) == []
    assert registry.remove(alice, "2") is a2
    assert len(registry) == 0
    assert registry.destinations == 0
    # The id is free again.
    registry.add(sub(alice, "1", "/sub/z"))
    assert len(registry) == 1


def test_remove_session() -> None:
    registry = SubscriptionRegistry()
    alice, bob = FakeSession("alice"), FakeSession("bob")
    for n in range(5):
        registry.add(sub(alice, str(n), f"/sub/{n % 2}"))
    kept = sub(bob, "x", "/sub/0")
    registry.add(kept)
    assert registry.remove_session(alice) == 5
    assert registry.remove_session(alice) == 0
    assert len(registry) == 1
    assert registry.destinations == 1
    assert list(registry.subscribers("/sub/0")) == [kept]
    assert registry.of(alice, "/sub/0") == []
    assert registry.remove(alice, "0") is None


def test_subscribers_is_a_live_view_safe_to_copy() -> None:
    registry = SubscriptionRegistry()
    alice = FakeSession("alice")
    registry.add(sub(alice, "1", "/sub/x"))
    snapshot = list(registry.subscribers("/sub/x"))
    registry.remove(alice, "1")
    assert len(snapshot) == 1


def test_pending_defaults_are_independent() -> None:
    alice = FakeSession("alice")
    first, second = sub(alice, "1", "/a", "client"), sub(alice, "2", "/a", "client")
    first.pending["0"] = None
    assert second.pending == {}


Operation = tuple[str, int, int, int]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "remove", "remove_session"]),
            st.integers(0, 2),  # session
            st.integers(0, 3),  # subscription id
            st.integers(0, 2),  # destination
        ),
        max_size=60,
    )
)
def test_indexes_agree_with_a_model(operations: list[Operation]) -> None:
    registry = SubscriptionRegistry()
    sessions = [FakeSession(str(n)) for n in range(3)]
    model: dict[tuple[int, str], str] = {}
    for operation, session_index, id_number, destination_number in operations:
        session, sub_id = sessions[session_index], str(id_number)
        destination = f"/sub/{destination_number}"
        if operation == "add":
            if (session_index, sub_id) in model:
                continue
            registry.add(sub(session, sub_id, destination))
            model[session_index, sub_id] = destination
        elif operation == "remove":
            removed = registry.remove(session, sub_id)
            expected = model.pop((session_index, sub_id), None)
            assert (removed.destination if removed else None) == expected
        else:
            count = registry.remove_session(session)
            mine = [key for key in model if key[0] == session_index]
            assert count == len(mine)
            for key in mine:
                del model[key]
        assert len(registry) == len(model)
        assert registry.destinations == len(set(model.values()))
        for number in range(3):
            destination = f"/sub/{number}"
            found = {
                (int(cast(FakeSession, s.session).name), s.id)
                for s in registry.subscribers(destination)
            }
            assert found == {key for key, value in model.items() if value == destination}


class Recorder:
    """An Interest that records what the registry tells it."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []

    def occupied(self, destination: str) -> None:
        self.told.append(("occupied", destination))

    def vacated(self, destination: str) -> None:
        self.told.append(("vacated", destination))


def test_interest_is_told_of_every_subscription_and_of_the_last_to_leave() -> None:
    registry = SubscriptionRegistry()
    interest = Recorder()
    registry.tell(interest)
    a, b = FakeSession("a"), FakeSession("b")
    for session, sid in ((a, "1"), (b, "1"), (a, "2")):
        destination = "/sub/chat/7" if sid == "1" else "/sub/chat/8"
        registry.add(Subscription(session, sid, destination, "auto", b""))
    registry.remove(a, "1")
    registry.remove_session(a)
    registry.remove_session(b)
    assert interest.told == [
        ("occupied", "/sub/chat/7"),
        ("occupied", "/sub/chat/7"),
        ("occupied", "/sub/chat/8"),
        ("vacated", "/sub/chat/8"),
        ("vacated", "/sub/chat/7"),
    ]
