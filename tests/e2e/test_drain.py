"""
SIGTERM drains: 200 clients receiving a steady stream are told the server is
restarting after the drain period, every acknowledged message reaches them
first, and the process exits 0; its JSON log lines parse.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal

import pytest
from websockets.exceptions import InvalidStatus

from protocol import Command
from tests.support.servers import UNLIMITED_SENDS_ARGS, GatewayProcess, GatewaySpawner
from tests.support.stomp_client import StompTestClient, stream, texts

SUBSCRIBERS = 200
DRAIN_PERIOD = 1.0
SHUTDOWN_TIMEOUT = 5.0
ROOM = 4


async def subscriber(port: int) -> StompTestClient:
    client = await StompTestClient.open(port)
    await client.connect("1.2")
    await client.subscribe(f"/sub/chat/{ROOM}")
    return client


async def readiness_while_draining(gateway: GatewayProcess) -> tuple[int, str]:
    for _ in range(200):
        status, body = await gateway.get("/readyz")
        if status != 200:
            return status, body
        await asyncio.sleep(0.01)
    raise AssertionError("/readyz stayed 200 after SIGTERM")


@pytest.mark.timeout(60)
async def test_sigterm_tells_every_client_after_delivering_what_was_acknowledged(
    spawn_gateway: GatewaySpawner,
) -> None:
    gateway = await spawn_gateway(
        "--drain-period",
        str(DRAIN_PERIOD),
        "--shutdown-timeout",
        str(SHUTDOWN_TIMEOUT),
        "--log-format",
        "json",
        # All 200 clients come from 127.0.0.1, and the stream is faster than a person.
        "--max-connections-per-address",
        str(SUBSCRIBERS + 10),
        *UNLIMITED_SENDS_ARGS,
    )
    clients = await asyncio.gather(*(subscriber(gateway.port) for _ in range(SUBSCRIBERS)))
    sender = await StompTestClient.open(gateway.port)
    await sender.connect("1.2")
    timeout = DRAIN_PERIOD + SHUTDOWN_TIMEOUT + 5
    readers = [asyncio.create_task(c.read_until_closed(timeout)) for c in clients]
    sender_reader = asyncio.create_task(sender.read_until_closed(timeout))
    sent: dict[str, str] = {}
    streaming = asyncio.create_task(stream(sender, sent, ROOM))
    try:
        await asyncio.sleep(0.5)  # the stream flows
        gateway.process.send_signal(signal.SIGTERM)

        # Readiness goes at once; new clients are turned away; old ones are still served.
        assert await readiness_while_draining(gateway) == (503, '{"status":503,"error":"draining"}')
        with pytest.raises(InvalidStatus) as refused:
            await StompTestClient.open(gateway.port)
        assert refused.value.response.status_code == 503

        exit_code = await asyncio.wait_for(asyncio.to_thread(gateway.process.wait), timeout)
        assert exit_code == 0, gateway.log()[-2000:]
        sender_frames, sender_code = await sender_reader
        results = await asyncio.gather(*readers)
    finally:
        streaming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await streaming
        for client in [*clients, sender]:
            await client.close()

    # The sender: RECEIPTs, then the ERROR, then the 1001 close.
    *receipts, error = sender_frames
    assert {f.command for f in receipts} == {Command.RECEIPT}
    assert error.command is Command.ERROR
    assert error.get("message") == "server restarting"
    assert sender_code == 1001
    acknowledged = [sent[f.get("receipt-id", "")] for f in receipts]
    assert len(acknowledged) >= 10, "the stream flowed during the drain period"

    # Every subscriber: every acknowledged message, then the ERROR, then 1001.
    for frames, code in results:
        assert code == 1001
        assert frames[-1].command is Command.ERROR
        assert frames[-1].get("message") == "server restarting"
        delivered = texts(frames)
        assert delivered[: len(acknowledged)] == acknowledged

    # --log-format json: one object per line, session events with their fields.
    entries = [json.loads(line) for line in gateway.log().splitlines() if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    closed = [e for e in entries if e.get("event") == "closed"]
    assert len(closed) == SUBSCRIBERS + 1
    assert all(e["reason"] == "server restarting" and e["session"] for e in closed)
    assert all(e["remote"].startswith("127.0.0.1:") for e in closed)
    assert {"opened", "connected", "error"} <= {e.get("event") for e in entries}
