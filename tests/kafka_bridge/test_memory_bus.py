"""Unit tests for :class:`kafka_bridge.InMemoryBus`."""

from __future__ import annotations

import asyncio
import dataclasses
import time

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
    [delivery] = seen
    assert (delivery.key, delivery.value, delivery.partition) == ("4", b'{"a":1}', 0)
    # Offsets count microseconds since the epoch, so they order across restarts.
    assert abs(delivery.offset - time.time_ns() // 1000) < 60_000_000


async def test_order_and_offsets() -> None:
    bus = InMemoryBus()
    seen: list[Delivery] = []
    bus.add_listener(seen.append)
    for n in range(100):
        await bus.publish(str(n % 3), str(n).encode())
    assert [d.value for d in seen] == [str(n).encode() for n in range(100)]
    offsets = [d.offset for d in seen]
    assert offsets == sorted(set(offsets))  # strictly increasing
    assert {d.partition for d in seen} == {0}
    assert [d.key for d in seen[:4]] == ["0", "1", "2", "0"]


async def test_every_listener_gets_every_record_in_registration_order() -> None:
    bus = InMemoryBus()
    calls: list[tuple[str, int]] = []
    bus.add_listener(lambda d: calls.append(("first", d.offset)))
    bus.add_listener(lambda d: calls.append(("second", d.offset)))
    await bus.publish("k", b"1")
    await bus.publish("k", b"2")
    first, second = calls[0][1], calls[2][1]
    assert calls == [("first", first), ("second", first), ("first", second), ("second", second)]
    assert first < second


async def test_late_listener_sees_only_later_records() -> None:
    bus = InMemoryBus()
    early: list[Delivery] = []
    late: list[Delivery] = []
    bus.add_listener(early.append)
    await bus.publish("k", b"before")
    bus.add_listener(late.append)
    await bus.publish("k", b"after")
    assert [d.value for d in early] == [b"before", b"after"]
    assert [d.value for d in late] == [b"after"]
    assert late[0].offset > early[0].offset


async def test_buses_are_independent() -> None:
    first, second = InMemoryBus(), InMemoryBus()
    seen: list[Delivery] = []
    second.add_listener(seen.append)
    await first.publish("k", b"x")
    await second.publish("k", b"y")
    assert [d.value for d in seen] == [b"y"]


def test_delivery_is_a_frozen_value() -> None:
    delivery = Delivery("k", b"v", partition=1, offset=2)
    assert delivery == Delivery("k", b"v", 1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delivery.offset = 3  # type: ignore[misc]


def test_publish_error_is_an_exception() -> None:
    assert issubclass(PublishError, Exception)


async def test_durable_listener_gets_batches_and_is_drained_on_close() -> None:
    bus = InMemoryBus()
    batches: list[list[bytes]] = []

    async def handler(batch: list[Delivery]) -> None:
        batches.append([delivery.value for delivery in batch])

    bus.add_durable_listener("group", handler)
    await bus.start()
    await bus.publish("1", b"a")
    await bus.publish("1", b"b")
    assert bus.durable_lag() == 2
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [value for batch in batches for value in batch] == [b"a", b"b"]
    assert bus.durable_lag() == 0
    await bus.publish("1", b"c")
    await bus.close()  # drains what is left
    assert [value for batch in batches for value in batch] == [b"a", b"b", b"c"]
