"""
docker-compose.yaml, brought up for real: two gateway replicas behind nginx.

Debian's docker-compose drives podman through its Docker API (``podman system
service`` on a socket of this test's own). Nothing can be pulled from Docker Hub
here, so an override file (written below) substitutes:

- the gateways: the image tests/ops/test_image.py builds from the Dockerfile, on
  the host's network, each on a port of its own, pointed at the Kafka broker and
  the MongoDB-wire server the other tests use (a topic and a database of this
  test's own): those listen on 127.0.0.1 and Kafka advertises that address, which
  a container on a bridge network cannot reach;
- kafka and mongo (apache/kafka, mongo): placeholders on the stand-in base whose
  health checks ask the host's servers, so the gateways still start only once
  those are healthy;
- nginx (nginx:1.27-alpine): Debian's nginx built on the stand-in base
  (tests/ops/nginx/Dockerfile), serving deploy/nginx.conf with only its upstream
  servers moved to the gateways' host ports; published on a free port
  (HTTP_PORT) as in the compose file.

No systemd runs here, so podman runs health checks only when asked: a thread asks
every second (``podman healthcheck run``) while the project is up.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.podman import ROOT, Podman, http_status, run, wait_until_serving
from tests.support import node as nodejs
from tests.support.node import NodeClient, Spawn
from tests.support.servers import free_port

pytestmark = [pytest.mark.podman, pytest.mark.kafka, pytest.mark.mongo, pytest.mark.timeout(900)]

NGINX_STAND_IN = "localhost/stomp-gateway-nginx-stand-in:test"
BASE_STAND_IN = "localhost/python:3.11-slim"  # Docker API: a short name means docker.io
GATEWAYS = ("gateway-1", "gateway-2")

spawn = nodejs.spawn_fixture("stompjs_client.mjs", "@stomp/stompjs", "ws")


@dataclasses.dataclass(frozen=True)
class Project:
    name: str
    compose: list[str]  # the docker-compose command with its files and project
    environment: dict[str, str]
    http_port: int  # nginx, published
    gateway_ports: dict[str, int]  # on the host network


@pytest.fixture
def docker_api(podman: Podman, tmp_path: Path) -> Iterator[str]:
    """``podman system service`` on a socket of this test's own: its DOCKER_HOST."""
    socket = tmp_path / "podman.sock"
    with (tmp_path / "service.log").open("w") as log:
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket}"],
            env=podman.environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(150):
            if socket.exists():
                break
            time.sleep(0.1)
        assert socket.exists(), (tmp_path / "service.log").read_text()
        yield f"unix://{socket}"
    finally:
        service.terminate()
        service.wait(timeout=30)


def _port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _reachable(port: int) -> list[str]:
    """A CMD-SHELL health check: something listens on the host's 127.0.0.1:port."""
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)"
    return ["CMD-SHELL", f'python -c "{probe}"']


def _placeholder(port: int) -> dict[str, Any]:
    idle = (
        "import signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); signal.pause()"
    )
    return {
        "image": BASE_STAND_IN,
        "network_mode": "host",
        "command": ["python", "-c", idle],
        "healthcheck": {"test": _reachable(port), "interval": "2s", "retries": 30},
    }


def override(
    image: str, kafka: str, topic: str, mongo: str, ports: dict[str, int], nginx_conf: Path
) -> dict[str, Any]:
    """The override file: the substitutions the module docstring lists."""
    services: dict[str, Any] = {
        "kafka": _placeholder(_port_of(kafka)),
        "mongo": _placeholder(urllib.parse.urlsplit(mongo).port or 27017),
        "nginx": {
            "image": NGINX_STAND_IN,
            "volumes": [f"{nginx_conf}:/etc/nginx/conf.d/default.conf:ro"],
        },
    }
    for name, port in ports.items():
        services[name] = {
            "image": image,
            "network_mode": "host",
            "environment": {
                "STOMP_GATEWAY_PORT": str(port),
                "STOMP_GATEWAY_KAFKA_BOOTSTRAP": kafka,
                "STOMP_GATEWAY_KAFKA_TOPIC": topic,
                "STOMP_GATEWAY_MONGO_URI": mongo,
                "STOMP_GATEWAY_DRAIN_PERIOD": "1",
            },
        }
    return {"services": services}


def nginx_conf(ports: dict[str, int]) -> str:
    """deploy/nginx.conf with the upstream servers at the gateways' host ports."""
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for name, port in ports.items():
        conf, found = re.subn(
            rf"server {name}:8080\b", f"server host.containers.internal:{port}", conf
        )
        assert found == 1, f"deploy/nginx.conf has no upstream server {name}:8080"
    return conf


class HealthChecks:
    """Run the project's containers' health checks every second (no systemd timers here)."""

    def __init__(self, podman: Podman, project: str) -> None:
        self.podman = podman
        self.project = project
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.wait(1.0):
            for name in self.containers():
                self.podman("healthcheck", "run", name, check=False, timeout=30)

    def containers(self, *flags: str) -> list[str]:
        label = f"label=com.docker.compose.project={self.project}"
        listed = self.podman("ps", *flags, "--filter", label, "--format", "{{.Names}}").stdout
        return listed.split()

    def __enter__(self) -> HealthChecks:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=60)


@pytest.fixture
def project(
    podman: Podman,
    gateway_image: str,
    docker_api: str,
    kafka_bootstrap: str,
    kafka_topic: str,
    mongo_db_uri: str,
    tmp_path: Path,
) -> Iterator[Project]:
    """The compose project up (all healthy); brought down, and checked gone, afterwards."""
    podman("build", "--pull=never", "--network", "host", "--format", "docker",
           "--tag", NGINX_STAND_IN, str(ROOT / "tests" / "ops" / "nginx"), timeout=600)  # fmt: skip
    ports = {name: free_port() for name in GATEWAYS}
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_conf(ports))
    files = tmp_path / "docker-compose.override.yaml"
    settings = override(gateway_image, kafka_bootstrap, kafka_topic, mongo_db_uri, ports, conf)
    files.write_text(yaml.safe_dump(settings))
    name = f"stomptest{uuid.uuid4().hex[:10]}"
    http_port = free_port()
    up = Project(
        name=name,
        compose=["docker-compose", "--project-name", name,
                 "--file", str(ROOT / "docker-compose.yaml"), "--file", str(files)],
        environment={**podman.environment, "DOCKER_HOST": docker_api,
                     "HTTP_PORT": f"127.0.0.1:{http_port}"},
        http_port=http_port,
        gateway_ports=ports,
    )  # fmt: skip
    with HealthChecks(podman, name) as checks:
        try:
            compose(up, "up", "--detach", "--no-build", timeout=600)
            yield up
        finally:
            logs = compose(up, "logs", "--no-color", check=False).stdout
            compose(up, "down", "--volumes", "--remove-orphans", timeout=300)
        assert "Traceback" not in logs, logs
        # `down` leaves nothing behind: containers, the network, the volumes.
        assert checks.containers("--all") == []
    networks = podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert [network for network in networks if network.startswith(name)] == []
    volumes = podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
    assert [volume for volume in volumes if volume.startswith(name)] == []


def compose(
    project: Project, *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run([*project.compose, *args], project.environment, check=check, timeout=timeout)


def connections(port: int) -> float:
    """A gateway's stomp_gateway_connections gauge, from its own /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    (line,) = [line for line in text.splitlines() if line.startswith("stomp_gateway_connections ")]
    return float(line.split()[1])


async def connect_one_on_each(project: Project, node: NodeClient) -> dict[str, str]:
    """
    Connect clients through nginx until each replica has one (nginx balances:
    the second usually suffices); return one client name per replica.
    """
    url = nodejs.ws_url(project.http_port)
    counts = {name: connections(port) for name, port in project.gateway_ports.items()}
    assert set(counts.values()) == {0}
    found: dict[str, str] = {}
    for number in range(10):
        client = f"client-{number}"
        await node.do("connect", client=client, url=url)
        before, counts = counts, {n: connections(p) for n, p in project.gateway_ports.items()}
        [replica] = [name for name in counts if counts[name] == before[name] + 1]
        found.setdefault(replica, client)
        if len(found) == len(GATEWAYS):
            return found
    pytest.fail(f"nginx sent 10 connections to one replica only: {counts}")


async def test_a_message_sent_through_one_replica_reaches_a_client_of_the_other(
    project: Project, spawn: Spawn
) -> None:
    base = f"http://127.0.0.1:{project.http_port}"
    wait_until_serving(f"{base}/nginx-health", "nginx never answered")
    assert http_status(f"{base}/readyz") == 200
    assert http_status(f"{base}/metrics") == 404  # per replica only
    node = await spawn()
    clients = await connect_one_on_each(project, node)
    receiver, sender = clients["gateway-1"], clients["gateway-2"]
    await node.subscribe(receiver, "/sub/chat/4")
    sent = {"memberId": 7, "nickname": "henhen", "message": "from the other replica"}
    await node.do("publish", client=sender, destination="/pub/chat/4", body=json.dumps(sent))
    [message] = await node.wait_messages(receiver, "/sub/chat/4", 1, timeout=30)
    received = json.loads(message["body"])
    assert {key: received[key] for key in sent} == sent
    await node.finish()
