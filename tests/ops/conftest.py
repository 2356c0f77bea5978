"""Fixtures of the operations tests: podman, and the image built from the Dockerfile."""

from __future__ import annotations

import pytest

from tests.ops.podman import IMAGE, Podman, build, prepare


@pytest.fixture(scope="session")
def podman(request: pytest.FixtureRequest) -> Podman:
    return prepare(request.config)


@pytest.fixture(scope="session")
def gateway_image(podman: Podman, request: pytest.FixtureRequest) -> str:
    """The Dockerfile, unchanged, built by podman (on a stand-in base if need be)."""
    build(request.config, IMAGE)
    return IMAGE
