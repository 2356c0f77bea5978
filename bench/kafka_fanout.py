"""
Fan-out benchmark: chat messages through Kafka between stomp-gateway processes.

Not a test: it asserts nothing about time; it prints one JSON line per run.

For 1 and then 2 gateway instances (each a ``stomp-gateway`` process on the same
fresh topic), a publisher connected to instance 1 sends chat messages to one
room at a steady rate, and subscribers of that room on every instance measure
the latency from send to delivery (each message carries its send time; all
processes share the host's clock) and count what never arrived. Then a
max-throughput run: the publisher sends as fast as RECEIPTs come back, with a
window of SENDs in flight.

The broker is ``--bootstrap``, else ``$KAFKA_BOOTSTRAP``, else the one of
``scripts/kafka-local start`` (stopped at the end if this script started it).

    .venv/bin/python bench/kafka_fanout.py [--rate 1000] [--duration 10] ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

from _common import local_server
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from protocol import Command, Frame, Limits, Parser

STOMP_GATEWAY = Path(sys.executable).with_name("stomp-gateway")
# A load generator is many clients on one address sending faster than people:
# lift the per-address and per-session SEND limits meant for the public.
LOAD_LIMITS = (
    "--max-connections-per-address",
    "1000000",
    "--send-rate",
    "1e9",
    "--send-burst",
    "1000000",
)
ROOM = 4
ERRORS = "/user/queue/errors"


def log(message: str) -> None:
    print(f"kafka_fanout: {message}", file=sys.stderr, flush=True)


# A minimal STOMP 1.2 client: frames built by hand, read with protocol.Parser.


def frame_bytes(command: str, headers: Iterable[tuple[str, str]], body: bytes = b"") -> bytes:
    head = command + "\n" + "".join(f"{name}:{value}\n" for name, value in headers) + "\n"
    return head.encode() + body + b"\0"


class Client:
    """One WebSocket connection speaking STOMP 1.2."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.parser = Parser(Limits(max_frame_size=2**24, max_headers=1000), version="1.2")
        self._pending: list[Frame] = []

    @classmethod
    async def open(cls, port: int) -> Client:
        ws = await connect(f"ws://127.0.0.1:{port}/ws", max_size=2**24, open_timeout=10)
        client = cls(ws)
        await client.send("CONNECT", [("accept-version", "1.2"), ("host", "localhost")])
        frame = await client.read()
        if frame.command is not Command.CONNECTED:
            raise RuntimeError(f"CONNECT answered with {frame}")
        return client

    async def send(
        self, command: str, headers: Iterable[tuple[str, str]], body: bytes = b""
    ) -> None:
        await self.ws.send(frame_bytes(command, headers, body).decode())

    async def read(self) -> Frame:
        while not self._pending:
            message = await self.ws.recv()
            data = message.encode() if isinstance(message, str) else message
            self._pending.extend(e for e in self.parser.feed(data) if isinstance(e, Frame))
        return self._pending.pop(0)

    async def subscribe(self, destination: str, subscription_id: str) -> None:
        receipt = f"sub-{subscription_id}"
        headers = [("id", subscription_id), ("destination", destination), ("receipt", receipt)]
        await self.send("SUBSCRIBE", headers)
        while True:
            frame = await self.read()
            if frame.command is Command.RECEIPT and frame.get("receipt-id") == receipt:
                return

    async def send_chat(self, seq: int, receipt: bool, room: int = ROOM) -> None:
        text = f"{seq} {time.time_ns()}"
        body = json.dumps({"memberId": 1, "nickname": "bench", "message": text}).encode()
        headers = [("destination", f"/pub/chat/{room}"), ("content-type", "application/json")]
        if receipt:
            headers.append(("receipt", str(seq)))
        await self.send("SEND", headers, body)

    async def close(self) -> None:
        await self.ws.close()


# Gateways and the broker.


@dataclasses.dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def http_status(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        status_line = await asyncio.wait_for(reader.readline(), 5)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def start_gateway(
    args: Sequence[str], log_dir: Path, prefix: Sequence[str] = ()
) -> GatewayProcess:
    """Start ``stomp-gateway`` (under ``prefix``, e.g. ``taskset -c 0``) and wait for /readyz."""
    port = free_port()
    log_path = log_dir / f"stomp-gateway-{port}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [*prefix, str(STOMP_GATEWAY), "--port", str(port), *LOAD_LIMITS, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"stomp-gateway exited; see {log_path}")
        with contextlib.suppress(OSError, TimeoutError, IndexError, ValueError):
            if await http_status(port, "/readyz") == 200:
                return GatewayProcess(process, port, log_path)
        await asyncio.sleep(0.1)
    process.kill()
    raise RuntimeError(f"stomp-gateway not ready in 30 s; see {log_path}")


async def stop_gateway(gateway: GatewayProcess) -> None:
    if gateway.process.poll() is None:
        gateway.process.terminate()
        try:
            await asyncio.to_thread(gateway.process.wait, 15)
        except subprocess.TimeoutExpired:
            gateway.process.kill()
            await asyncio.to_thread(gateway.process.wait)


async def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    """
    Create the topic and wait until the broker describes it: a gateway creating
    it itself may find it not described yet and exit ("cannot be described").
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            (description,) = await admin.describe_topics([topic])
            if description["error_code"] == 0 and len(description["partitions"]) == partitions:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"topic {topic} not described by the broker in 30 s")
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def gateways(
    count: int, bootstrap: str, log_dir: Path, extra: Sequence[str]
) -> AsyncIterator[list[GatewayProcess]]:
    topic = f"bench-{uuid.uuid4().hex[:12]}"
    args = ["--kafka-bootstrap", bootstrap, "--kafka-topic", topic, "--log-level", "warning"]
    await create_topic(bootstrap, topic)
    started: list[GatewayProcess] = []
    try:
        for _ in range(count):
            started.append(await start_gateway([*args, *extra], log_dir))
        yield started
    finally:
        await asyncio.gather(*(stop_gateway(gateway) for gateway in started))


def broker(bootstrap: str | None) -> contextlib.AbstractContextManager[str]:
    """The broker ``bootstrap``, else the one of ``scripts/kafka-local start``."""
    return local_server("kafka-local", "KAFKA_BOOTSTRAP", bootstrap)


# Measuring.


@dataclasses.dataclass
class Subscriber:
    client: Client
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    seen: set[int] = dataclasses.field(default_factory=set)
    duplicates: int = 0
    last_at: float = 0.0  # monotonic time of the last delivery

    async def run(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = await self.client.read()
                if frame.command is not Command.MESSAGE:
                    continue
                now_ns = time.time_ns()
                seq_text, sent_ns = json.loads(frame.body)["message"].split()
                seq = int(seq_text)
                if seq in self.seen:
                    self.duplicates += 1
                    continue
                self.seen.add(seq)
                self.latencies_ms.append((now_ns - int(sent_ns)) / 1e6)
                self.last_at = time.monotonic()


@dataclasses.dataclass
class Publisher:
    client: Client
    receipted: int = 0
    failed: int = 0
    window: asyncio.Semaphore | None = None

    async def run(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = await self.client.read()
                if frame.command is Command.RECEIPT:
                    self.receipted += 1
                elif frame.command is Command.MESSAGE and frame.get("destination") == ERRORS:
                    self.failed += 1
                else:
                    continue
                if self.window is not None:
                    self.window.release()


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return round(ordered[index], 2)


async def settle(subscribers: Sequence[Subscriber], expected: int, idle: float) -> None:
    """Wait until every subscriber has every message, or none progressed for ``idle`` s."""
    last_progress = time.monotonic()
    total = -1
    while True:
        now_total = sum(len(s.seen) for s in subscribers)
        if now_total == expected * len(subscribers):
            return
        if now_total != total:
            total, last_progress = now_total, time.monotonic()
        elif time.monotonic() - last_progress > idle:
            return
        await asyncio.sleep(0.05)


async def run(
    kind: str,
    instances: list[GatewayProcess],
    *,
    messages: int,
    rate: float | None,
    window: int,
    subscribers_per_instance: int,
    publisher_count: int,
    rooms: int = 1,
) -> dict[str, Any]:
    subscribers: list[Subscriber] = []
    for gateway in instances:
        for n in range(subscribers_per_instance):
            client = await Client.open(gateway.port)
            for room in range(rooms):
                await client.subscribe(f"/sub/chat/{ROOM + room}", f"room-{n}-{room}")
            subscribers.append(Subscriber(client))
    publishers = [Publisher(await Client.open(instances[0].port)) for _ in range(publisher_count)]
    for publisher in publishers:
        await publisher.client.subscribe(ERRORS, "errors")
    with_receipts = rate is None
    if with_receipts:
        for publisher in publishers:
            publisher.window = asyncio.Semaphore(window)
    tasks = [asyncio.create_task(s.run()) for s in subscribers]
    tasks.extend(asyncio.create_task(p.run()) for p in publishers)
    started = 0.0  # set just before sending starts

    async def send_share(index: int, publisher: Publisher) -> None:
        """Send messages index, index + P, index + 2P, ... through one connection."""
        for seq in range(index, messages, len(publishers)):
            if rate is not None:
                delay = started + seq / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif publisher.window is not None:
                await publisher.window.acquire()
            await publisher.client.send_chat(seq, with_receipts, ROOM + seq % rooms)

    started = time.monotonic()
    try:
        await asyncio.gather(*(send_share(i, p) for i, p in enumerate(publishers)))
        sent_in = time.monotonic() - started
        if with_receipts:
            while sum(p.receipted + p.failed for p in publishers) < messages:
                await asyncio.sleep(0.01)
        receipts_in = time.monotonic() - started
        await settle(subscribers, messages, idle=5.0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in [*(p.client for p in publishers), *(s.client for s in subscribers)]:
            await client.close()
    latencies = [x for s in subscribers for x in s.latencies_ms]
    delivered_in = max((s.last_at for s in subscribers), default=started) - started
    slowest = min(len(s.seen) for s in subscribers)
    result: dict[str, Any] = {
        "run": kind,
        "instances": len(instances),
        "publishers": len(publishers),
        "subscribers": len(subscribers),
        "rooms": rooms,
        "messages": messages,
        "target_rate": rate,
        "send_rate": round(messages / sent_in, 1),
        "messages_per_s": round(slowest / delivered_in, 1) if delivered_in > 0 else None,
        "deliveries_per_s": round(len(latencies) / delivered_in, 1) if delivered_in > 0 else None,
        "lat_ms_p50": percentile(latencies, 0.50),
        "lat_ms_p90": percentile(latencies, 0.90),
        "lat_ms_p99": percentile(latencies, 0.99),
        "lat_ms_max": percentile(latencies, 1.0),
        "lost": sum(messages - len(s.seen) for s in subscribers),
        "duplicates": sum(s.duplicates for s in subscribers),
        "send_errors": sum(p.failed for p in publishers),
    }
    if with_receipts:
        result["window"] = window
        receipted = sum(p.receipted for p in publishers)
        result["receipts_per_s"] = round(receipted / receipts_in, 1)
    return result


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP"))
    parser.add_argument("--rate", type=float, default=1000.0, help="steady msg/s (default 1000)")
    parser.add_argument("--duration", type=float, default=10.0, help="steady seconds (10)")
    parser.add_argument("--instances", default="1,2", help="gateway counts to run (1,2)")
    parser.add_argument("--subscribers", type=int, default=1, help="per instance (1)")
    parser.add_argument(
        "--rooms",
        type=int,
        default=1,
        help="rooms messages go round-robin to; each subscriber is in all (1)",
    )
    parser.add_argument(
        "--publishers", type=int, default=1, help="publishing connections to instance 1 (1)"
    )
    parser.add_argument("--max-messages", type=int, default=10000, help="max-throughput run")
    parser.add_argument(
        "--window", type=int, default=100, help="SENDs in flight per publisher (100)"
    )
    parser.add_argument("--no-max", action="store_true", help="skip the max-throughput run")
    parser.add_argument("--log-dir", type=Path, help="keep the gateways' logs there")
    parser.add_argument(
        "--gateway-arg", action="append", default=[], help="extra stomp-gateway argument"
    )
    options = parser.parse_args(argv)
    counts = [int(n) for n in options.instances.split(",")]
    with broker(options.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        log_dir = options.log_dir or Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        log(f"broker {bootstrap}; gateway logs in {log_dir}")
        for count in counts:
            async with gateways(count, bootstrap, log_dir, options.gateway_arg) as instances:
                result = await run(
                    "steady",
                    instances,
                    messages=int(options.rate * options.duration),
                    rate=options.rate,
                    window=options.window,
                    subscribers_per_instance=options.subscribers,
                    publisher_count=options.publishers,
                    rooms=options.rooms,
                )
                print(json.dumps(result), flush=True)
                if not options.no_max:
                    result = await run(
                        "max",
                        instances,
                        messages=options.max_messages,
                        rate=None,
                        window=options.window,
                        subscribers_per_instance=options.subscribers,
                        publisher_count=options.publishers,
                        rooms=options.rooms,
                    )
                    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
