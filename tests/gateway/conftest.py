"""Fixtures of the gateway tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .stomp_client import StompTestClient


@pytest.fixture
async def clients() -> AsyncIterator[list[StompTestClient]]:
    """Raw STOMP clients to close after the test (see :func:`stomp_client.connect`)."""
    opened: list[StompTestClient] = []
    yield opened
    for client in opened:
        await client.close()
