"""
``--workers 2`` with a real Kafka broker: two processes on one port. Clients
that land on different workers exchange messages in order; ``/metrics``
covers both; a worker that dies is started again; SIGTERM drains both and
loses nothing acknowledged; the in-memory bus refuses more than one worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from typing import Any

import pytest

from protocol import Command
from tests.support.servers import (
    STOMP_GATEWAY,
    UNLIMITED_SENDS_ARGS,
    GatewayFactory,
    GatewayProcess,
    GatewaySpawner,
)
from tests.support.stomp_client import StompTestClient, chat_body, connected, payload, stream, texts

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

WAIT = 15.0
ROOM = 4
CONNECTIONS = re.compile(r'^stomp_gateway_connections\{worker="(\d+)"\} (\S+)$', re.MULTILINE)


async def connections_by_worker(gateway: GatewayProcess) -> dict[str, float]:
    status, body = await gateway.get("/metrics")
    assert status == 200, body
    return {worker: float(count) for worker, count in CONNECTIONS.findall(body)}


async def on_both_workers(gateway: GatewayProcess, opened: list[StompTestClient]) -> None:
    """Connect clients until both workers serve some (the kernel picks the worker)."""
    deadline = time.monotonic() + WAIT
    while True:
        client = await connected(gateway.port, opened)
        await client.subscribe(f"/sub/chat/{ROOM}")
        if len(opened) < 4:
            continue
        counts = await connections_by_worker(gateway)
        while sum(counts.values()) < len(opened):  # a worker's figures are up to 1 s old
            assert time.monotonic() < deadline, counts
            await asyncio.sleep(0.2)
            counts = await connections_by_worker(gateway)
        if len(counts) == 2 and all(counts.values()):
            return


async def spawn_workers(spawner: GatewaySpawner, *args: str) -> GatewayProcess:
    gateway = await spawner("--workers", "2", *args, *UNLIMITED_SENDS_ARGS)
    deadline = time.monotonic() + 30
    while len(await connections_by_worker(gateway)) < 2:  # /readyz answered from one
        assert time.monotonic() < deadline, gateway.log()[-3000:]
        await asyncio.sleep(0.2)
    return gateway


async def test_clients_on_different_workers_exchange_messages_in_order(
    spawn_gateway: GatewaySpawner,
    kafka_bootstrap: str,
    created_kafka_topic: str,
    clients: list[StompTestClient],
) -> None:
    gateway = await spawn_workers(
        spawn_gateway, "--kafka-bootstrap", kafka_bootstrap, "--kafka-topic", created_kafka_topic
    )
    await on_both_workers(gateway, clients)
    per_sender = 30
    for number, client in enumerate(clients):
        for n in range(per_sender):
            last = n == per_sender - 1  # its RECEIPT: all of them are on the bus
            await client.send_chat(ROOM, chat_body(f"{number}:{n}"), receipt=last)
    for client in clients:
        received: list[dict[str, Any]] = []
        while len(received) < per_sender * len(clients):
            received.append(payload(await client.expect(Command.MESSAGE, timeout=WAIT)))
        by_sender: dict[str, list[int]] = {}
        for message in received:
            sender, n = message["message"].split(":")
            by_sender.setdefault(sender, []).append(int(n))
        assert by_sender == {str(s): list(range(per_sender)) for s in range(len(clients))}


async def test_a_dead_worker_is_restarted_and_logged(
    spawn_gateway: GatewaySpawner, kafka_bootstrap: str, created_kafka_topic: str
) -> None:
    gateway = await spawn_workers(
        spawn_gateway, "--kafka-bootstrap", kafka_bootstrap, "--kafka-topic", created_kafka_topic
    )
    output = subprocess.run(
        ["pgrep", "-P", str(gateway.process.pid)], capture_output=True, text=True, check=True
    )
    victim = int(output.stdout.split()[0])
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while f"(pid {victim}) exited with -9: restarting" not in gateway.log():
        assert time.monotonic() < deadline, gateway.log()[-3000:]
        await asyncio.sleep(0.1)
    while len(await connections_by_worker(gateway)) < 2 or "worker 0 started" not in gateway.log():
        assert time.monotonic() < deadline, gateway.log()[-3000:]
        await asyncio.sleep(0.2)
    assert "Traceback" not in gateway.log()


@pytest.mark.mongo
async def test_sigterm_drains_every_worker_and_loses_nothing_acknowledged(
    spawn_gateway: GatewaySpawner,
    make_gateway: GatewayFactory,
    kafka_bootstrap: str,
    created_kafka_topic: str,
    mongo_db_uri: str,
    clients: list[StompTestClient],
) -> None:
    options = ("--kafka-bootstrap", kafka_bootstrap, "--kafka-topic", created_kafka_topic)
    gateway = await spawn_workers(
        spawn_gateway, *options, "--mongo-uri", mongo_db_uri, "--drain-period", "1"
    )
    await on_both_workers(gateway, clients)
    subscribers = list(clients)
    sender = await connected(gateway.port, clients)
    readers = [asyncio.create_task(c.read_until_closed(WAIT)) for c in [*subscribers, sender]]
    sent: dict[str, str] = {}
    streaming = asyncio.create_task(stream(sender, sent, ROOM))
    try:
        await asyncio.sleep(0.5)
        gateway.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(asyncio.to_thread(gateway.process.wait), 30) == 0
        *results, (sender_frames, _) = await asyncio.gather(*readers)
    finally:
        streaming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await streaming
    log = gateway.log()
    assert log.count("INFO gateway.app: stopped") == 2, log[-3000:]
    assert "Traceback" not in log
    acknowledged = [
        sent[f.get("receipt-id", "")] for f in sender_frames if f.command is Command.RECEIPT
    ]
    assert len(acknowledged) >= 5, "the stream flowed during the drain period"
    for frames, code in results:  # told, in order, nothing unacknowledged invented
        assert code == 1001
        assert frames[-1].get("message") == "server restarting"
        delivered = texts(frames)
        assert delivered == [f"m-{n}" for n in range(len(delivered))]

    # Each acknowledged message is in Kafka: the next instance's persister stores what
    # the workers' did not.
    after = await make_gateway(
        kafka_bootstrap=kafka_bootstrap, kafka_topic=created_kafka_topic, mongo_uri=mongo_db_uri
    )
    deadline = time.monotonic() + 30
    stored: list[str] = []
    while not set(acknowledged) <= set(stored):
        assert time.monotonic() < deadline, (len(stored), len(acknowledged))
        await asyncio.sleep(0.2)
        history = await after.store.history(ROOM, before=None, limit=1000)
        stored = [message.message or "" for message in history]


def test_in_memory_bus_refuses_more_than_one_worker() -> None:
    result = subprocess.run(
        [str(STOMP_GATEWAY), "--workers", "2"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "--kafka-bootstrap" in lines[-1], result.stderr


def test_workers_that_cannot_start_stop_the_supervisor() -> None:
    unreachable = ("--kafka-bootstrap", "127.0.0.1:1")  # refused at once
    command = [str(STOMP_GATEWAY), "--workers", "2", "--port", "0", *unreachable]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "could not start: stopping every worker" in result.stderr
    assert "restarting" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_port_is_one_line_and_exit_1(kafka_bootstrap: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()  # without SO_REUSEPORT: nobody may share it
        port = str(taken.getsockname()[1])
        command = [str(STOMP_GATEWAY), "--workers", "2", "--host", "127.0.0.1", "--port", port]
        command += ["--kafka-bootstrap", kafka_bootstrap]
        result = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "cannot start: " in result.stderr
    assert "Traceback" not in result.stderr
