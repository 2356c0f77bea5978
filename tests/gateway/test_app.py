"""Unit tests for :mod:`gateway.app`: what start() starts, stop releases, in reverse."""

from __future__ import annotations

import socket

import pytest

from gateway import Config, Gateway
from kafka_bridge import BusError, InMemoryBus
from persistence import InMemoryStore


class RecordingStore(InMemoryStore):
    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    async def start(self) -> None:
        self.events.append("store started")
        await super().start()

    async def close(self) -> None:
        self.events.append("store closed")
        await super().close()


class RecordingBus(InMemoryBus):
    def __init__(self, events: list[str], *, fails: bool = False) -> None:
        super().__init__()
        self.events = events
        self.fails = fails

    async def start(self) -> None:
        if self.fails:
            raise BusError("cannot use the bus")
        self.events.append("bus started")
        await super().start()

    async def close(self) -> None:
        self.events.append("bus closed")
        await super().close()


def recording_gateway(events: list[str], config: Config, *, bus_fails: bool = False) -> Gateway:
    return Gateway(config, bus=RecordingBus(events, fails=bus_fails), store=RecordingStore(events))


async def test_shutdown_releases_what_start_started_in_reverse() -> None:
    events: list[str] = []
    gateway = recording_gateway(events, Config(port=0))
    await gateway.start()
    assert events == ["store started", "bus started"]
    await gateway.shutdown()
    assert events[2:] == ["bus closed", "store closed"]
    await gateway.shutdown()  # a second shutdown has nothing left to release
    assert len(events) == 4


async def test_a_start_failing_half_way_releases_what_had_started() -> None:
    events: list[str] = []
    gateway = recording_gateway(events, Config(port=0), bus_fails=True)
    with pytest.raises(BusError):
        await gateway.start()
    assert events == ["store started", "store closed"]
    await gateway.shutdown()  # as the command does after a failed start
    assert events == ["store started", "store closed"]


async def test_a_port_in_use_releases_bus_and_store() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        events: list[str] = []
        gateway = recording_gateway(events, Config(port=taken.getsockname()[1]))
        with pytest.raises(OSError, match="in use"):
            await gateway.start()
    assert events == ["store started", "bus started", "bus closed", "store closed"]
