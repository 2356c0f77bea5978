"""
Running podman for the operations tests (tests/ops).

``scripts/image-test prepare`` installs podman and runc, writes a containers.conf
for this host and provides the Dockerfile's base image (a Debian stand-in when
Docker Hub cannot be reached); :class:`Podman` runs podman with that
configuration. When podman cannot be installed (not root, no apt-get), the tests
that need it are skipped, and the skip is printed in the session's output.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE_TEST = ROOT / "scripts" / "image-test"
CANNOT_INSTALL = 77  # scripts/image-test prepare: podman cannot be installed here
IMAGE = "localhost/stomp-gateway:test"


def run(
    command: list[str], environment: dict[str, str], *, check: bool, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``command``; with ``check``, fail the test (with its stderr) unless it exits 0."""
    result = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)}: exit {result.returncode}\n{result.stderr}")
    return result


def announce(config: pytest.Config, line: str) -> None:
    """Print ``line`` in the session's output, even when output is captured."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{line}", yellow=True, bold=True)


@dataclasses.dataclass(frozen=True)
class Podman:
    """podman with the containers.conf scripts/image-test wrote for this host."""

    environment: dict[str, str]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return run(["podman", *args], self.environment, check=check, timeout=timeout)

    def inspect(self, name: str, template: str) -> str:
        return self("inspect", "--format", template, name).stdout.strip()


def prepare(config: pytest.Config) -> Podman:
    """Run ``scripts/image-test prepare``; skip loudly if podman cannot be installed."""
    result = subprocess.run(
        [str(IMAGE_TEST), "prepare"], capture_output=True, text=True, timeout=1500, check=False
    )
    if result.returncode == CANNOT_INSTALL:
        reason = f"PODMAN CANNOT BE INSTALLED HERE: podman tests skipped\n{result.stderr}"
        announce(config, reason)
        pytest.skip(reason)
    assert result.returncode == 0, result.stderr
    (line,) = subprocess.run(
        [str(IMAGE_TEST), "env"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    name, _, value = line.partition("=")
    return Podman({**os.environ, name: value})


def build(config: pytest.Config, tag: str) -> None:
    """Build the Dockerfile as ``tag`` and print how long it took and the image size."""
    result = subprocess.run(
        [str(IMAGE_TEST), "build", tag], capture_output=True, text=True, timeout=1500, check=False
    )
    assert result.returncode == 0, result.stderr[-5000:]
    announce(config, result.stderr.strip().splitlines()[-1])


def http_status(url: str) -> int:
    """The status of a GET to ``url``; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def wait_until_serving(url: str, describe: str, attempts: int = 300) -> None:
    """Poll ``url`` until it answers 200; fail with ``describe`` (a log) if it never does."""
    for _ in range(attempts):
        if http_status(url) == 200:
            return
        time.sleep(0.2)
    pytest.fail(f"{url} never answered 200\n{describe}")
