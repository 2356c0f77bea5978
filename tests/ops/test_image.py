"""
The image, built from the Dockerfile unchanged and run by podman.

scripts/image-test builds it (``podman build --pull=never --network host
--format docker``) on ``python:3.11-slim``, or, where Docker Hub cannot be
reached, on a local stand-in: Debian bookworm's Python 3.11 imported as
``localhost/python:3.11-slim``. Each test starts its own container with
``STOMP_GATEWAY_PORT`` set to a port other than the image's 8080, published on
a free port of 127.0.0.1, and checks what an operator relies on: health,
the user, a real ``@stomp/stompjs`` client, and the drain on ``podman stop``.
No systemd runs here, so health checks run when asked (``podman healthcheck run``).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.podman import Podman, wait_until_serving
from tests.support import node as nodejs
from tests.support.node import Spawn, chat_message
from tests.support.servers import free_port

pytestmark = [pytest.mark.podman, pytest.mark.timeout(900)]

PORT = 8081  # not the image's default: everything must follow STOMP_GATEWAY_PORT
DRAIN_PERIOD = 2
SHUTDOWN_TIMEOUT = 10
GATEWAY_UID = 10001

spawn = nodejs.spawn_fixture("stompjs_client.mjs", "@stomp/stompjs", "ws")


@dataclasses.dataclass(frozen=True)
class Container:
    name: str
    port: int  # on the host

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def container(podman: Podman, gateway_image: str) -> Iterator[Container]:
    """
    The image running as an operator would start it, locked down as the Helm
    chart's pods are (read-only root filesystem, no capabilities, no privilege
    escalation); removed afterwards.
    """
    started = Container(f"stomp-gateway-test-{uuid.uuid4().hex[:12]}", free_port())
    podman(
        "run", "--detach", "--name", started.name,
        "--env", f"STOMP_GATEWAY_PORT={PORT}",
        "--env", f"STOMP_GATEWAY_DRAIN_PERIOD={DRAIN_PERIOD}",
        "--env", f"STOMP_GATEWAY_SHUTDOWN_TIMEOUT={SHUTDOWN_TIMEOUT}",
        "--publish", f"127.0.0.1:{started.port}:{PORT}",
        # As the Helm chart's securityContext runs it.
        "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        gateway_image,
    )  # fmt: skip
    try:
        wait_until_serving(f"{started.url}/healthz", podman("logs", started.name).stderr)
        yield started
        log = podman("logs", started.name).stderr
        assert "Traceback" not in log, log
    finally:
        podman("rm", "--force", "--time", "0", started.name, check=False)


def test_the_gateway_serves_healthz_and_readyz_on_the_configured_port(
    container: Container,
) -> None:
    wait_until_serving(f"{container.url}/readyz", "readyz never answered 200")


def test_the_gateway_runs_as_uid_10001(podman: Podman, container: Container) -> None:
    assert podman.inspect(container.name, "{{.Config.User}}") == str(GATEWAY_UID)
    pid = podman.inspect(container.name, "{{.State.Pid}}")
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    (uids,) = [line.split()[1:] for line in status if line.startswith("Uid:")]
    assert uids == [str(GATEWAY_UID)] * 4  # real, effective, saved, filesystem


def test_the_health_check_follows_the_configured_port(podman: Podman, container: Container) -> None:
    result = podman("healthcheck", "run", container.name, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert podman.inspect(container.name, "{{.State.Health.Status}}") == "healthy"


async def test_a_stompjs_client_chats_through_the_container(
    container: Container, spawn: Spawn
) -> None:
    node = await spawn()
    done = await node.do("connect", client="a", url=nodejs.ws_url(container.port))
    assert done["subprotocol"] == "v12.stomp"
    subscription = await node.subscribe("a", "/sub/chat/4")
    sent = {"memberId": 7, "nickname": "henhen", "message": "안녕하세요 👋🏽"}
    await node.do("publish", client="a", destination="/pub/chat/4", body=json.dumps(sent))
    [message] = await node.wait_messages("a", "/sub/chat/4", 1)
    chat_message(message, subscription, 4, sent)
    await node.finish()


async def test_podman_stop_drains_the_clients_and_exits_0(
    podman: Podman, container: Container, spawn: Spawn
) -> None:
    node = await spawn()
    await node.do("connect", client="a", url=nodejs.ws_url(container.port))
    await node.subscribe("a", "/sub/chat/4")
    grace = DRAIN_PERIOD + SHUTDOWN_TIMEOUT + 5
    podman("stop", "--time", str(grace), container.name, timeout=grace + 30)
    # SIGKILL after the grace period would leave 137.
    assert podman.inspect(container.name, "{{.State.ExitCode}}") == "0"
    error = await node.wait_for(lambda e: e["event"] == "stompError", what="ERROR frame")
    assert error["headers"]["message"] == "server restarting"
    close = await node.wait_for(lambda e: e["event"] == "close", what="close")
    assert close["code"] == 1001
    log = podman("logs", container.name).stderr
    assert "SIGTERM received" in log
    await node.kill()
