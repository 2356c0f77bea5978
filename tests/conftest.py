"""
Fixtures shared by the test packages: a real gateway on a free port, gateway
processes, the Kafka broker and the MongoDB server (their helpers are in
:mod:`tests.support.servers`).
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gateway import Config, Gateway
from tests.support.servers import (
    KAFKA_LOCAL,
    MONGO_LOCAL,
    STOMP_GATEWAY,
    GatewayFactory,
    GatewayProcess,
    GatewaySpawner,
    create_kafka_topic,
    free_port,
    local_server,
    with_database,
)
from tests.support.stomp_client import StompTestClient

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection


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


# Kafka: a real broker for the tests marked ``kafka``, and gateway processes.


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


@pytest.fixture
async def created_kafka_topic(kafka_bootstrap: str, kafka_topic: str) -> str:
    """:func:`kafka_topic`, created with 3 partitions and described by the broker."""
    await create_kafka_topic(kafka_bootstrap, kafka_topic)
    return kafka_topic


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
