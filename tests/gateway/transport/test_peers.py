"""Unit tests for :mod:`gateway.transport.peers`."""

from __future__ import annotations

import types
from typing import Any, cast

import pytest
from websockets.asyncio.server import ServerConnection

from gateway.transport.peers import remote_host


@pytest.mark.parametrize(
    ("address", "host"),
    [
        (("127.0.0.1", 51234), "127.0.0.1"),
        (("::1", 51234, 0, 0), "::1"),  # IPv6 sockets name four fields
        ("/run/gateway.sock", "/run/gateway.sock"),
        (None, "None"),
    ],
)
def test_remote_host_leaves_out_the_port(address: Any, host: str) -> None:
    connection = cast(ServerConnection, types.SimpleNamespace(remote_address=address))
    assert remote_host(connection) == host
