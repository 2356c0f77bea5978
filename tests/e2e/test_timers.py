"""Timers: the CONNECT timeout and heart-beats both ways."""

from __future__ import annotations

import asyncio
import itertools
import time

from protocol import Command, HeartBeat
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import ClientFactory
from tests.support.waiting import eventually


async def test_connect_timeout(make_gateway: GatewayFactory, open_client: ClientFactory) -> None:
    gateway = await make_gateway(connect_timeout=0.5)
    started = time.monotonic()
    silent = await open_client(gateway, connect=False)
    punctual = await open_client(gateway)
    error = await silent.expect_error_and_close()
    assert error.get("message") == "connect timeout"
    assert time.monotonic() - started >= 0.4
    assert await punctual.barrier() == []  # CONNECT in time cancels the timer


async def test_silent_client_is_dropped(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    gateway = await make_gateway(heartbeat_interval=500, heartbeat_tolerance=1.5)
    started = time.monotonic()
    # Receive interval max(cx, sy): 500 ms, so a timeout after 750 ms...
    silent = await open_client(gateway, heart_beat="500,0")
    await silent.subscribe("/sub/chat/1", "silent")
    # ...but 1000 ms when the client promises beats only every second.
    slower = await open_client(gateway, heart_beat="1000,0")
    beating = await open_client(gateway, heart_beat="500,0")
    await beating.subscribe("/sub/chat/1", "beating")

    async def beat() -> None:
        while True:
            await asyncio.sleep(0.1)
            await beating.send_raw(b"\n")

    beater = asyncio.create_task(beat())
    try:
        frames, code = await silent.read_until_closed()
        dropped = time.monotonic() - started
        assert frames == []
        assert code == 1008
        assert 0.6 <= dropped < 1.4
        await eventually(lambda: len(gateway.registry) == 1)
        frames, code = await slower.read_until_closed()
        assert frames == []
        assert code == 1008
        assert time.monotonic() - started >= 1.4
        assert await beating.barrier() == []
    finally:
        beater.cancel()
    assert [sub.id for sub in gateway.registry.subscribers("/sub/chat/1")] == ["beating"]


async def test_server_heart_beats(make_gateway: GatewayFactory, open_client: ClientFactory) -> None:
    gateway = await make_gateway(heartbeat_floor=100)
    quiet = await open_client(gateway, heart_beat="0,0")
    client = await open_client(gateway, connect=False)
    connected = await client.connect("1.2", heart_beat="0,200")
    assert connected.get("heart-beat") == "200,10000"
    times = []
    for _ in range(4):
        event, is_text = await client.read_event(timeout=2)
        assert isinstance(event, HeartBeat)
        assert is_text
        assert client.received[-1] == "\n"
        times.append(time.monotonic())
    intervals = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(0.1 < interval < 0.6 for interval in intervals), intervals
    assert "\n" not in quiet.received
    assert await quiet.barrier() == []
    assert "\n" not in quiet.received


async def test_heart_beats_wait_for_idle(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    # Any frame sent counts as a beat: a busy connection gets no EOLs.
    gateway = await make_gateway(heartbeat_floor=100)
    client = await open_client(gateway, heart_beat="0,150")
    await client.subscribe("/sub/pong")
    started = time.monotonic()
    while time.monotonic() - started < 0.5:  # over three intervals
        await client.send("SEND", [("destination", "/pub/ping")])
        await client.expect(Command.MESSAGE)
        await asyncio.sleep(0.03)
    assert "\n" not in client.received
    # Idle again: the beats resume.
    event, _ = await client.read_event(timeout=1)
    assert isinstance(event, HeartBeat)
