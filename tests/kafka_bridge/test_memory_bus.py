"""Unit tests for :class:`kafka_bridge.InMemoryBus`."""

from __future__ import annotations

import dataclasses

import pytest

from kafka_bridge import Delivery, InMemoryBus, MessageBus, PublishError


async def test_is_a_message_bus() -> None:
    bus: MessageBus = InMemoryBus()
    await bus.start()
    await bus.close()


async def test_publish_without_listeners() -> None:
    bus = InMemoryBus()
    await bus.publish("1", b"x")


async def test_delivers_before_publish_returns() -> None:
    bus = InMemoryBus()
    seen: list[Delivery] = []
    bus.add_listener(seen.append)
    await bus.publish("4", b'{"a":1}')
    assert seen == [Delivery("4", b'{"a":1}', partition=0, offset=0)]


async def test_order_and_offsets() -> None:
    bus = InMemoryBus()
    seen: list[Delivery] = []
    bus.add_listener(seen.append)
    for n in range(100):
        await bus.publish(str(n % 3), str(n).encode())
    assert [d.value for d in seen] == [str(n).encode() for n in range(100)]
    assert [d.offset for d in seen] == list(range(100))
    assert {d.partition for d in seen} == {0}
    assert [d.key for d in seen[:4]] == ["0", "1", "2", "0"]


async def test_every_listener_gets_every_record_in_registration_order() -> None:
    bus = InMemoryBus()
    calls: list[tuple[str, int]] = []
    bus.add_listener(lambda d: calls.append(("first", d.offset)))
    bus.add_listener(lambda d: calls.append(("second", d.offset)))
    await bus.publish("k", b"1")
    await bus.publish("k", b"2")
    assert calls == [("first", 0), ("second", 0), ("first", 1), ("second", 1)]


async def test_late_listener_sees_only_later_records() -> None:
    bus = InMemoryBus()
    early: list[Delivery] = []
    late: list[Delivery] = []
    bus.add_listener(early.append)
    await bus.publish("k", b"before")
    bus.add_listener(late.append)
    await bus.publish("k", b"after")
    assert [d.value for d in early] == [b"before", b"after"]
    assert [(d.value, d.offset) for d in late] == [(b"after", 1)]


async def test_buses_are_independent() -> None:
    first, second = InMemoryBus(), InMemoryBus()
    seen: list[Delivery] = []
    second.add_listener(seen.append)
    await first.publish("k", b"x")
    await second.publish("k", b"y")
    assert [(d.value, d.offset) for d in seen] == [(b"y", 0)]


def test_delivery_is_a_frozen_value() -> None:
    delivery = Delivery("k", b"v", partition=1, offset=2)
    assert delivery == Delivery("k", b"v", 1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delivery.offset = 3  # type: ignore[misc]


def test_publish_error_is_an_exception() -> None:
    assert issubclass(PublishError, Exception)
