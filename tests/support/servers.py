"""
Real servers for the tests: gateways in this process or as ``stomp-gateway``
processes, and the Kafka and MongoDB servers of ``scripts/kafka-local`` and
``scripts/mongo-local``. The fixtures that start them are in ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import Gateway
from tests.support.http import http_get

GatewayFactory = Callable[..., Awaitable[Gateway]]

# Gateway options lifting the per-session SEND rate limit, for tests whose one
# sender is a load generator rather than a person.
UNLIMITED_SENDS: dict[str, Any] = {"send_rate": 1e9, "send_burst": 1_000_000}
UNLIMITED_SENDS_ARGS = ("--send-rate", "1e9", "--send-burst", "1000000")

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_LOCAL = REPO_ROOT / "scripts" / "kafka-local"
MONGO_LOCAL = REPO_ROOT / "scripts" / "mongo-local"
STOMP_GATEWAY = Path(sys.executable).with_name("stomp-gateway")


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


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
