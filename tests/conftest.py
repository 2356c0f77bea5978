"""Fixtures shared by the test packages: a real gateway on a free port."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gateway import Config, Gateway
from tests.support.stomp_client import StompTestClient

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

GatewayFactory = Callable[..., Awaitable[Gateway]]

# Gateway options lifting the per-session SEND rate limit, for tests whose one
# sender is a load generator rather than a person.
UNLIMITED_SENDS: dict[str, Any] = {"send_rate": 1e9, "send_burst": 1_000_000}
UNLIMITED_SENDS_ARGS = ("--send-rate", "1e9", "--send-burst", "1000000")


@pytest.fixture
async def make_gateway() -> AsyncIterator[GatewayFactory]:
    """Start gateways with ``Config`` overrides; all are shut down afterwards."""
    started: list[Gateway] = []

    async def start(**overrides: Any) -> Gateway:
        overrides.setdefault("port", 0)
        gateway = Gateway(Config(**overrides))
        await gateway.start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.shutdown()


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> Gateway:
    """A gateway with the default configuration on a free port."""
    return await make_gateway()


# Kafka: a real broker for the tests marked ``kafka``, and gateway processes.

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_LOCAL = REPO_ROOT / "scripts" / "kafka-local"
STOMP_GATEWAY = Path(sys.executable).with_name("stomp-gateway")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers of the tests that need real servers."""
    config.addinivalue_line(
        "markers",
        "kafka: needs a real Kafka broker: $KAFKA_BOOTSTRAP, else one started with "
        "scripts/kafka-local (Java 17+ and Maven); deselect with -m 'not kafka'",
    )
    config.addinivalue_line(
        "markers",
        "mongo: needs a real MongoDB server: $MONGO_URI, else one started with "
        "scripts/mongo-local (mongod, or FerretDB built with Go); deselect with -m 'not mongo'",
    )
    config.addinivalue_line(
        "markers",
        "podman: builds or runs the image with podman (scripts/image-test prepare installs "
        "it; skipped, loudly, where it cannot be); deselect with -m 'not podman'",
    )


def run_local(
    script: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """
    Run one of the project's server scripts (fail the test if it fails).

    ``env`` is added to the environment: ``KAFKA_LOCAL_DIR`` or
    ``MONGO_LOCAL_DIR`` runs a server of its own, apart from the shared one.
    """
    result = subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        env=None if env is None else {**os.environ, **env},
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"scripts/{script.name} {' '.join(args)} failed (exit {result.returncode}):\n"
            f"{result.stderr[-4000:]}",
            pytrace=False,
        )
    return result


def parse_address(stdout: str, variable: str) -> str:
    """Return the address in a server script's ``VARIABLE=address`` line."""
    for line in stdout.splitlines():
        if line.startswith(f"{variable}="):
            return line.removeprefix(f"{variable}=").strip()
    raise ValueError(f"no {variable}= line in {stdout!r}")


def local_server(script: Path, variable: str) -> Iterator[str]:
    """
    The address of a server for the session: ``$VARIABLE`` when set, else the
    one ``script start`` prints (idempotent: a server already running is
    reused, and then left running; one started here is stopped at the end).
    """
    external = os.environ.get(variable)
    if external:
        yield external
        return
    result = run_local(script, "start")
    started_here = "already running" not in result.stderr
    try:
        yield parse_address(result.stdout, variable)
    finally:
        if started_here:
            subprocess.run([str(script), "stop"], capture_output=True, check=False)


def parse_kafka_bootstrap(stdout: str) -> str:
    return parse_address(stdout, "KAFKA_BOOTSTRAP")


def kafka_local(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/kafka-local ARGS`` (fail the test if it fails)."""
    return run_local(KAFKA_LOCAL, *args, env=env, timeout=300)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """
    A Kafka broker for the session: ``$KAFKA_BOOTSTRAP`` when set, else the
    one of ``scripts/kafka-local start`` (idempotent: a broker already running
    is reused, and then left running). Tests share it: each uses its own topic
    (:func:`kafka_topic`).
    """
    yield from local_server(KAFKA_LOCAL, "KAFKA_BOOTSTRAP")


@pytest.fixture
def kafka_topic() -> str:
    """A topic name of this test's own, so tests sharing a broker do not interfere."""
    return f"test-{uuid.uuid4().hex}"


async def create_kafka_topic(
    bootstrap: str, topic: str, partitions: int = 3, timeout: float = 15.0
) -> None:
    """
    Create ``topic`` and wait until the broker describes it with a leader for
    every partition.

    CreateTopics returns before the broker's metadata has the topic: a
    DescribeTopics right after it may answer UNKNOWN_TOPIC_OR_PARTITION. Tests
    that are not about the gateway creating the topic create it here first.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, partitions, 1)])
        codes = [code for _, code, *_ in response.topic_errors]
        assert codes == [0], f"cannot create topic {topic}: {response.topic_errors}"
        deadline = time.monotonic() + timeout
        while True:
            (description,) = await admin.describe_topics([topic])
            found = description["partitions"]
            if (
                description["error_code"] == 0
                and len(found) == partitions
                and all(p["leader"] >= 0 for p in found)
            ):
                return
            assert time.monotonic() < deadline, f"topic {topic} not described: {description}"
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


@pytest.fixture
async def created_kafka_topic(kafka_bootstrap: str, kafka_topic: str) -> str:
    """:func:`kafka_topic`, created with 3 partitions and described by the broker."""
    await create_kafka_topic(kafka_bootstrap, kafka_topic)
    return kafka_topic


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET ``path`` from 127.0.0.1:``port``; return the status and the body."""

    async def get() -> tuple[int, str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            writer.write(request.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            length = next(
                (
                    int(v)
                    for k, _, v in (x.partition(":") for x in lines[1:])
                    if k.strip().lower() == "content-length"
                ),
                None,
            )
            body = await (reader.readexactly(length) if length is not None else reader.read())
            return status, body.decode(errors="replace")
        finally:
            writer.close()

    return await asyncio.wait_for(get(), timeout)


@dataclasses.dataclass
class GatewayProcess:
    """A ``stomp-gateway`` process started by :func:`spawn_gateway`."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def log(self) -> str:
        """Return what the process logged so far."""
        return self.log_path.read_text(errors="replace")

    async def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        """GET ``path`` from the gateway."""
        return await http_get(self.port, path, timeout)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll ``/readyz`` until it answers 200."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"stomp-gateway exited with {self.process.returncode}:\n{self.log()[-4000:]}"
                )
            try:
                status, body = await self.get("/readyz", timeout=3)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                last = repr(exc)
            else:
                if status == 200:
                    return
                last = f"{status} {body}"
            await asyncio.sleep(0.1)
        raise TimeoutError(f"/readyz not 200 within {timeout}s: {last}\n{self.log()[-4000:]}")

    async def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; return the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)
        return self.process.returncode


GatewaySpawner = Callable[..., Awaitable[GatewayProcess]]


@pytest.fixture
async def spawn_gateway(tmp_path: Path) -> AsyncIterator[GatewaySpawner]:
    """
    Start ``stomp-gateway`` processes on free ports with the given arguments and
    wait until their ``/readyz`` answers 200; all are stopped afterwards.
    """
    started: list[GatewayProcess] = []

    async def spawn(*args: str, ready_timeout: float = 30.0) -> GatewayProcess:
        for _attempt in range(3):
            port = free_port()
            log_path = tmp_path / f"stomp-gateway-{port}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [str(STOMP_GATEWAY), "--port", str(port), *args],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            gateway = GatewayProcess(process, port, log_path)
            started.append(gateway)
            try:
                await gateway.wait_ready(ready_timeout)
            except RuntimeError:
                if "address already in use" in gateway.log().lower():
                    continue  # another process took the free port first: try another
                raise
            return gateway
        raise RuntimeError("no free port for stomp-gateway")

    yield spawn
    await asyncio.gather(*(gateway.stop() for gateway in started))


# MongoDB: a real server for the tests marked ``mongo``.

MONGO_LOCAL = REPO_ROOT / "scripts" / "mongo-local"


def parse_mongo_uri(stdout: str) -> str:
    return parse_address(stdout, "MONGO_URI")


def mongo_local(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/mongo-local ARGS`` (fail the test if it fails)."""
    return run_local(MONGO_LOCAL, *args, env=env, timeout=timeout)


def with_database(uri: str, database: str) -> str:
    """Return ``uri`` naming ``database`` (its path), options kept."""
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(uri)._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    """
    A MongoDB server for the session: ``$MONGO_URI`` when set, else the one of
    ``scripts/mongo-local start`` (idempotent: a server already running is
    reused, and then left running; the first start may build FerretDB for
    minutes). Tests share it: each uses a database of its own (:func:`mongo_db_uri`).
    """
    yield from local_server(MONGO_LOCAL, "MONGO_URI")


@pytest.fixture
def mongo_db_uri(mongo_uri: str) -> Iterator[str]:
    """:func:`mongo_uri` naming a database of this test's own, dropped afterwards."""
    from pymongo import MongoClient

    database = f"test_{uuid.uuid4().hex}"
    yield with_database(mongo_uri, database)
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, serverSelectionTimeoutMS=10_000)
    try:
        client.drop_database(database)
    finally:
        client.close()


@pytest.fixture
async def raw(mongo_db_uri: str) -> AsyncIterator[AsyncCollection[dict[str, Any]]]:
    """The test database's ``chat_messages``, through a client of the test's own."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_db_uri, serverSelectionTimeoutMS=10_000
    )
    yield client.get_default_database()["chat_messages"]
    await client.close()


@pytest.fixture
async def clients() -> AsyncIterator[list[StompTestClient]]:
    """Raw STOMP clients, closed after the test (see ``tests.support.stomp_client``)."""
    opened: list[StompTestClient] = []
    yield opened
    for client in opened:
        await client.close()
