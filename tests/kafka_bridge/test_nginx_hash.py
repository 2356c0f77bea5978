"""
``--partitioner nginx-hash`` against a real nginx (Debian's nginx-light).

nginx with ``upstream { hash $arg_room; server A; server B; server C; server D; }``
(no ``consistent``) in front of four tiny HTTP servers that answer with their
own index: for thousands of room ids, the server nginx picks for ``?room=<id>``
is ``partition_for(room, 64, "nginx-hash") % 4``, so every room of a partition
lands on one instance. Skipped, loudly, only where nginx is not installed
(scripts/setup installs nginx-light).
"""

from __future__ import annotations

import http.client
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kafka_bridge.kafka import partition_for
from tests.ops.podman import announce

INSTANCES = 4
PARTITIONS = 64
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


class IndexServer(ThreadingHTTPServer):
    """An HTTP server on a free port that knows its index among the backends."""

    def __init__(self, index: int) -> None:
        super().__init__(("127.0.0.1", 0), IndexHandler)
        self.index = index


class IndexHandler(BaseHTTPRequestHandler):
    """Answer every GET with the index of the server that received it."""

    server: IndexServer

    def do_GET(self) -> None:
        body = str(self.server.index).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: thousands of requests."""


@pytest.fixture
def backends() -> Iterator[list[int]]:
    """Four HTTP servers on free ports; each answers with its index."""
    servers = [IndexServer(index) for index in range(INSTANCES)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield [server.server_address[1] for server in servers]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def nginx_conf(listen: int, backends: list[int], prefix: Path) -> str:
    """A minimal nginx.conf: one server proxying to ``hash $arg_room`` upstreams."""
    servers = "".join(f"        server 127.0.0.1:{port};\n" for port in backends)
    temp = "\n".join(
        f"    {name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
worker_processes 1;
daemon off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp}
    upstream gateways {{
        hash $arg_room;
{servers}    }}
    server {{
        listen 127.0.0.1:{listen};
        location / {{ proxy_pass http://gateways; }}
    }}
}}
"""


def free_port() -> int:
    server = IndexServer(-1)
    port = server.server_address[1]
    server.server_close()
    return port


@pytest.fixture
def nginx(backends: list[int], tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[int]:
    """A real nginx in front of the backends; yields its port."""
    if NGINX is None:
        reason = (
            "NGINX IS NOT INSTALLED HERE (scripts/setup installs nginx-light): "
            "--partitioner nginx-hash is NOT checked against nginx"
        )
        announce(request.config, reason)
        pytest.skip(reason)
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_conf(port, backends, tmp_path))
    process = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(conf)], stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until_listening(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        assert process.stderr is not None
        process.stderr.close()


def wait_until_listening(port: int, process: subprocess.Popen[str]) -> None:
    """Return once nginx accepts connections; fail with its log if it exits."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            assert process.stderr is not None
            pytest.fail(f"nginx exited {process.returncode}: {process.stderr.read()}")
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=5).connect()
        except OSError:
            time.sleep(0.05)
        else:
            return
    pytest.fail("nginx did not listen within 30 s")


def pick(connection: http.client.HTTPConnection, room: str) -> int:
    """The index of the server nginx sends ``/ws?room=<room>`` to."""
    connection.request("GET", f"/ws?room={room}")
    response = connection.getresponse()
    assert response.status == 200
    return int(response.read())


def room_ids() -> list[int]:
    """Small ids, as the seed's rooms, and 64-bit ones (chatRoomId is a long)."""
    rng = random.Random(16)
    return [*range(1, 3001), *(rng.randrange(2**63) for _ in range(500)), 2**63 - 1]


def test_nginx_hash_sends_each_partition_to_one_instance(nginx: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", nginx, timeout=30)
    picked = {room: pick(connection, str(room)) for room in room_ids()}
    connection.close()

    expected = {
        room: partition_for(str(room), PARTITIONS, "nginx-hash") % INSTANCES for room in picked
    }
    assert picked == expected
    instances_of_partition: dict[int, set[int]] = {}
    for room, instance in picked.items():
        partition = partition_for(str(room), PARTITIONS, "nginx-hash")
        instances_of_partition.setdefault(partition, set()).add(instance)
    assert len(instances_of_partition) == PARTITIONS
    assert all(len(instances) == 1 for instances in instances_of_partition.values())
    # The seed's modulo partitions do not follow nginx: that is why this exists.
    assert any(instance != room % PARTITIONS % INSTANCES for room, instance in picked.items())
