"""
Gateway processes for the benchmarks: ``stomp-gateway`` from the virtualenv on a
free port, waited for until ``/readyz``; Kafka topics, brokers and MongoDB
databases for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from _common import local_server
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

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
    count: int, bootstrap: str, log_dir: Path, extra: Sequence[str], prefix: Sequence[str] = ()
) -> AsyncIterator[list[GatewayProcess]]:
    """``count`` gateways (under ``prefix``) sharing a fresh topic."""
    topic = f"bench-{uuid.uuid4().hex[:12]}"
    args = ["--kafka-bootstrap", bootstrap, "--kafka-topic", topic, "--log-level", "warning"]
    await create_topic(bootstrap, topic)
    started: list[GatewayProcess] = []
    try:
        for _ in range(count):
            started.append(await start_gateway([*args, *extra], log_dir, prefix))
        yield started
    finally:
        await asyncio.gather(*(stop_gateway(gateway) for gateway in started))


def broker(bootstrap: str | None) -> contextlib.AbstractContextManager[str]:
    """The broker ``bootstrap``, else the one of ``scripts/kafka-local start``."""
    return local_server("kafka-local", "KAFKA_BOOTSTRAP", bootstrap)


def mongo_server(uri: str | None) -> contextlib.AbstractContextManager[str]:
    """The MongoDB server ``uri``, else the one of ``scripts/mongo-local start``."""
    return local_server("mongo-local", "MONGO_URI", uri)


@contextlib.asynccontextmanager
async def fresh_database(
    server_uri: str,
) -> AsyncIterator[tuple[str, AsyncDatabase[dict[str, Any]]]]:
    """A new database on ``server_uri`` (its URI, and a client's handle), dropped at the end."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    uri = urlunsplit(urlsplit(server_uri)._replace(path=f"/{name}"))
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        yield uri, client.get_default_database()
    finally:
        with contextlib.suppress(Exception):
            await client.drop_database(name)
        await client.close()
