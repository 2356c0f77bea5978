"""The image, compose and proxy files are valid, consistent and run the same entry point."""

from __future__ import annotations

import configparser
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway import Config
from gateway.config import OPTIONS, env_name
from gateway.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
GATEWAYS = ("gateway-1", "gateway-2")
OPTION_VARIABLES = {env_name(option) for option in OPTIONS}


def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def stages() -> list[list[str]]:
    found: list[list[str]] = []
    for line in dockerfile():
        if line.startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(line)
    return found


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    return loaded


def nginx_conf() -> str:
    return (ROOT / "deploy" / "nginx.conf").read_text()


def image_environment() -> dict[str, str]:
    pairs = [line.removeprefix("ENV ") for line in dockerfile() if line.startswith("ENV ")]
    return dict(re.findall(r"(\w+)=(\S+)", " ".join(pairs)))


# Dockerfile.


def test_dockerfile_builds_a_wheel_then_keeps_only_the_installed_package() -> None:
    build, runtime = stages()
    assert build[0] == "FROM python:3.11-slim AS build"
    assert runtime[0] == "FROM python:3.11-slim"
    assert any("pip wheel" in line for line in build)
    copied = [line for line in runtime if line.startswith(("COPY", "ADD"))]
    assert copied == ["COPY --from=build /opt/stomp-gateway /opt/stomp-gateway"]
    sources = {line.split()[1] for line in build if line.startswith("COPY ")}
    assert not sources & {"tests", ".", "bench", "scripts"}
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored
    assert "!tests/" not in ignored


def test_dockerfile_runs_the_console_script_as_non_root() -> None:
    lines = dockerfile()
    assert 'ENTRYPOINT ["stomp-gateway"]' in lines
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1] not in ("root", "0")
    assert "STOPSIGNAL SIGTERM" in lines


def test_dockerfile_configures_through_option_variables_and_exposes_the_port() -> None:
    environment = image_environment()
    assert environment["STOMP_GATEWAY_HOST"] == "0.0.0.0"
    gateway_variables = {name for name in environment if name.startswith("STOMP_GATEWAY_")}
    assert gateway_variables <= OPTION_VARIABLES
    assert f"EXPOSE {environment['STOMP_GATEWAY_PORT']}" in dockerfile()


def test_dockerfile_health_check_asks_healthz_with_python_only() -> None:
    (healthcheck,) = [line for line in dockerfile() if line.startswith("HEALTHCHECK")]
    assert '"python", "-c"' in healthcheck
    assert "urllib.request" in healthcheck
    assert "/healthz" in healthcheck
    assert "curl" not in healthcheck


def health_check_command() -> list[str]:
    """The HEALTHCHECK's exec-form command, as the container runs it."""
    (healthcheck,) = [line for line in dockerfile() if line.startswith("HEALTHCHECK")]
    command: list[str] = json.loads(healthcheck.split(" CMD ", 1)[1])
    return command


@pytest.mark.parametrize("status", [200, 503])
def test_dockerfile_health_check_asks_the_port_the_gateway_listens_on(status: int) -> None:
    """STOMP_GATEWAY_PORT moves the gateway, and the health check follows it."""
    answered: list[str] = []

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answered.append(self.path)
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Healthz) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = str(server.server_address[1])
        python, *arguments = health_check_command()
        assert python == "python"
        environment = {**os.environ, "STOMP_GATEWAY_PORT": port}
        result = subprocess.run(
            [sys.executable, *arguments], env=environment, capture_output=True, check=False
        )
        server.shutdown()
    assert answered == ["/healthz"]
    assert (result.returncode == 0) == (status == 200), result.stderr


def test_dockerfile_carries_oci_labels() -> None:
    labels = " ".join(line for line in dockerfile() if line.startswith("LABEL "))
    for key in ("title", "description", "version"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_console_script_and_module_share_the_entry_point() -> None:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    scripts = setup["options.entry_points"]["console_scripts"]
    assert "stomp-gateway = gateway.cli:main" in scripts
    assert "from .cli import main" in (ROOT / "gateway" / "__main__.py").read_text()


# docker-compose.yaml.


def test_compose_file_is_valid_for_docker_compose() -> None:
    client = shutil.which("docker-compose")
    if client is None:
        pytest.skip("docker-compose is not installed: `config -q` validation skipped")
    result = subprocess.run(
        [client, "-f", str(ROOT / "docker-compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_runs_kafka_mongodb_two_gateways_and_nginx() -> None:
    services = compose()["services"]
    assert set(services) == {"kafka", "mongo", *GATEWAYS, "nginx"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["mongo"]["image"].startswith("mongo:")
    assert "mongo-data:/data/db" in services["mongo"]["volumes"]
    assert "mongo-data" in compose()["volumes"]
    assert services["nginx"]["image"].startswith("nginx:")
    assert services["nginx"]["ports"] == ["${HTTP_PORT:-8080}:80"]
    mount = "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro"
    assert services["nginx"]["volumes"] == [mount]


@pytest.mark.parametrize("name", GATEWAYS)
def test_compose_wires_each_gateway_to_kafka_and_mongodb(name: str) -> None:
    services = compose()["services"]
    gateway = services[name]
    assert gateway["build"] == "."
    assert "ports" not in gateway  # reached through nginx only
    environment = gateway["environment"]
    assert set(environment) <= OPTION_VARIABLES
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert advertised == f"PLAINTEXT://{environment['STOMP_GATEWAY_KAFKA_BOOTSTRAP']}"
    assert environment["STOMP_GATEWAY_MONGO_URI"].startswith("mongodb://mongo:27017/")
    assert "/readyz" in " ".join(gateway["healthcheck"]["test"])
    drain = float(environment["STOMP_GATEWAY_DRAIN_PERIOD"])
    timeout = float(environment["STOMP_GATEWAY_SHUTDOWN_TIMEOUT"])
    assert _seconds(gateway["stop_grace_period"]) > drain + timeout


def test_compose_starts_nothing_before_its_dependencies_are_healthy() -> None:
    services = compose()["services"]
    expected = {name: {"kafka", "mongo"} for name in GATEWAYS} | {"nginx": set(GATEWAYS)}
    for name, dependencies in expected.items():
        depends_on = services[name]["depends_on"]
        assert set(depends_on) == dependencies
        for dependency in dependencies:
            assert depends_on[dependency]["condition"] == "service_healthy"
            assert "healthcheck" in services[dependency]


def _seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


# deploy/nginx.conf.


def test_nginx_balances_over_both_gateways_on_their_port() -> None:
    upstream = re.search(r"upstream stomp_gateways \{(.*?)\}", nginx_conf(), re.S)
    assert upstream is not None
    port = image_environment()["STOMP_GATEWAY_PORT"]
    servers = re.findall(r"server ([\w-]+):(\d+)", upstream[1])
    assert servers == [(name, port) for name in GATEWAYS]
    # least_conn counts over every worker process only with a shared zone.
    assert "least_conn;" in upstream[1]
    assert re.search(r"^\s*zone stomp_gateways \d+k;", upstream[1], re.M)


def test_compose_health_checks_run_in_a_shell() -> None:
    """CMD-SHELL: podman's Docker API splits CMD arguments at spaces (containers/podman#26519)."""
    for name, service in compose()["services"].items():
        assert service["healthcheck"]["test"][0] == "CMD-SHELL", name


def test_nginx_upgrades_websockets_and_outlasts_heart_beats() -> None:
    conf = nginx_conf()
    assert "proxy_http_version 1.1;" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    config = Config()
    silence = config.heartbeat_interval / 1000 * config.heartbeat_tolerance
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        (timeout,) = re.findall(rf"{directive} (\d+)s;", conf)
        assert int(timeout) > silence


def test_nginx_routes_the_endpoints_sockjs_info_and_the_api() -> None:
    conf = nginx_conf()
    (websocket,) = re.findall(r"location ~ (\S+) \{", conf)
    endpoints = compose()["services"]["gateway-1"]["environment"]["STOMP_GATEWAY_ENDPOINT"]
    for endpoint in endpoints.split(","):
        for path in (endpoint, f"{endpoint}/info", f"{endpoint}/123/abc/websocket"):
            assert re.match(websocket, path), path
    assert "location /v1/api/ {" in conf
    assert conf.count("proxy_pass http://stomp_gateways;") == 3


def test_nginx_limits_connections_per_client_since_the_gateways_see_only_nginx() -> None:
    conf = nginx_conf()
    assert "limit_conn_zone $binary_remote_addr zone=per_client:" in conf
    assert re.search(r"location ~ \^/wss\?[^}]*limit_conn per_client \d+;", conf)
    for name in GATEWAYS:
        environment = compose()["services"][name]["environment"]
        assert int(environment["STOMP_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS"]) >= 100_000


# deploy/grafana-dashboard.json.


def test_dashboard_graphs_metrics_the_gateway_exports() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    text = Metrics().render().decode()
    exported = set(re.findall(r"^(?:# TYPE )?(stomp_gateway_\w+)", text, re.M))
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names = re.findall(r"stomp_gateway_\w+", target["expr"])
            assert names, target
            for name in names:
                assert name in exported or re.sub(r"_bucket$", "", name) in exported, name
