"""Fixtures of the end-to-end tests: raw STOMP clients of a real gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway import Gateway
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import ClientFactory, StompTestClient


@pytest.fixture
async def open_client(make_gateway: GatewayFactory) -> AsyncIterator[ClientFactory]:
    """Open clients (connected in 1.2 unless told otherwise); all are closed afterwards."""
    clients: list[StompTestClient] = []

    async def open_(
        gateway: Gateway,
        version: str | None = "1.2",
        *,
        connect: bool = True,
        heart_beat: str | None = None,
        **kwargs: Any,
    ) -> StompTestClient:
        client = await StompTestClient.open(gateway.port, **kwargs)
        clients.append(client)
        if connect:
            await client.connect(version, heart_beat=heart_beat)
        return client

    yield open_
    for client in clients:
        await client.close()
