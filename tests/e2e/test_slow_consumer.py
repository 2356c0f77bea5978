"""
A subscriber that stops reading is cut off; 50 others receive everything meanwhile.

The slow subscriber pauses its TCP reading after subscribing (with a small
receive buffer), so the kernel buffers fill and the gateway's queue for it
grows (the gateway's socket gets a small fixed send buffer, as on a slow
network path). Small limits keep the test short: 32 KiB low-water mark, 256 KiB hard
limit, 1 s send-time limit. Latency and memory figures are printed (run with
``-s``), never asserted beyond generous bounds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import statistics
import time
from pathlib import Path

import pytest

from protocol import Command
from tests.support.servers import UNLIMITED_SENDS, GatewayFactory
from tests.support.stomp_client import StompTestClient, connected, frame_bytes

SUBSCRIBERS = 50
MESSAGES = 400
TEXT = "x" * 300
ROOM = "/sub/chat/1"


def rss_kib() -> int:
    """Resident memory of this process (gateway and clients), in KiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4


async def receive_all(client: StompTestClient, latencies: list[float]) -> list[int]:
    numbers = []
    while len(numbers) < MESSAGES:
        frame = await client.expect(Command.MESSAGE, timeout=30)
        body = json.loads(frame.body)
        number, sent_at = body["message"].split(" ")[:2]
        latencies.append(time.monotonic() - float(sent_at))
        numbers.append(int(number))
    return numbers


async def test_a_slow_subscriber_is_cut_off_and_the_others_get_everything(
    make_gateway: GatewayFactory,
    clients: list[StompTestClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "gateway.transport.connection")
    gateway = await make_gateway(
        max_outbound_bytes=256 * 1024,
        outbound_low_water=32 * 1024,
        send_time_limit=1.0,
        **UNLIMITED_SENDS,
    )
    fast = [await connected(gateway.port, clients) for _ in range(SUBSCRIBERS)]
    for client in fast:
        await client.subscribe(ROOM)
    # A small receive buffer, set before connecting so the TCP window stays small.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", gateway.port))
    sock.setblocking(False)
    slow = await StompTestClient.open(gateway.port, sock=sock)
    await slow.connect("1.2")
    await slow.subscribe(ROOM)
    slow.ws.transport.pause_reading()  # never reads again: the kernel buffers fill
    # Linux grows a socket's send buffer up to 4 MiB (tcp_wmem): a small fixed one on
    # the gateway's side stands for a slow network path without streaming megabytes.
    (server_side,) = [
        c for c in gateway.connections if c.remote.endswith(f":{sock.getsockname()[1]}")
    ]
    server_socket = server_side.websocket.transport.get_extra_info("socket")
    server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    sender = await connected(gateway.port, clients)

    rss_before = rss_kib()
    latencies: list[float] = []
    receivers = [asyncio.create_task(receive_all(c, latencies)) for c in fast]
    started = time.monotonic()
    cut_off_after: float | None = None
    for start in range(0, MESSAGES, 10):
        batch = b"".join(
            frame_bytes(
                "SEND",
                [("destination", "/pub/chat/1")],
                json.dumps(
                    {"memberId": 1, "nickname": "n", "message": f"{n} {time.monotonic()} {TEXT}"}
                ),
            )
            for n in range(start, start + 10)
        )
        await sender.send_raw(batch)
        await asyncio.sleep(0.02)  # a steady stream of about 500 messages/s
        if cut_off_after is None and len(gateway.registry.subscribers(ROOM)) == SUBSCRIBERS:
            cut_off_after = time.monotonic() - started
    received = await asyncio.gather(*receivers)
    elapsed = time.monotonic() - started
    rss_after = rss_kib()

    assert all(numbers == list(range(MESSAGES)) for numbers in received)
    async with asyncio.timeout(10):  # generous: the limit is 1 s once it stalls
        while len(gateway.registry.subscribers(ROOM)) > SUBSCRIBERS:
            await asyncio.sleep(0.01)
    if cut_off_after is None:
        cut_off_after = time.monotonic() - started
    reasons = [r.getMessage() for r in caplog.records if "slow consumer" in r.getMessage()]
    assert len(reasons) == 1, reasons
    assert server_side.remote in reasons[0]

    slow.ws.transport.abort()  # it would wait for a close frame stuck behind its backlog
    ordered = sorted(latencies)
    print(
        f"\n{SUBSCRIBERS} subscribers x {MESSAGES} messages in {elapsed:.2f} s; "
        f"slow one cut off after {cut_off_after:.2f} s ({reasons[0].split(': ', 1)[1]}); "
        f"latency p50 {statistics.median(ordered) * 1000:.1f} ms, "
        f"p99 {ordered[int(len(ordered) * 0.99)] * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms; "
        f"RSS {rss_before} -> {rss_after} KiB ({rss_after - rss_before:+d})"
    )
