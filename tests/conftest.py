"""Fixtures shared by the test packages: a real gateway on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gateway import Config, Gateway

GatewayFactory = Callable[..., Awaitable[Gateway]]


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
