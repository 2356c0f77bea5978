"""The image and compose files are valid and run the same entry point."""

from __future__ import annotations

import configparser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_file_defines_the_gateway_service() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    gateway = compose["services"]["gateway"]
    assert gateway["build"] == "."
    assert "8080:8080" in gateway["ports"]
    assert all(key.startswith("STOMP_GATEWAY_") for key in gateway["environment"])


def test_dockerfile_runs_the_console_script_as_non_root() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert sum(line.startswith("FROM ") for line in lines) >= 2  # multi-stage
    assert 'ENTRYPOINT ["stomp-gateway"]' in lines
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert "STOPSIGNAL SIGTERM" in lines


def test_console_script_and_module_share_the_entry_point() -> None:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    scripts = setup["options.entry_points"]["console_scripts"]
    assert "stomp-gateway = gateway.cli:main" in scripts
    assert "from .cli import main" in (ROOT / "gateway" / "__main__.py").read_text()


def test_compose_wires_the_gateway_to_kafka_and_mongodb() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["mongo"]["image"].startswith("mongo:")
    gateway = services["gateway"]
    assert gateway["environment"]["STOMP_GATEWAY_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert gateway["environment"]["STOMP_GATEWAY_MONGO_URI"].startswith("mongodb://mongo:27017/")
    for dependency in ("kafka", "mongo"):
        assert gateway["depends_on"][dependency]["condition"] == "service_healthy"
        assert "healthcheck" in services[dependency]
