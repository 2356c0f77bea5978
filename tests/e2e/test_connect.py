"""CONNECT and CONNECTED: version negotiation, the heart-beat offer, the headers."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway import Gateway
from protocol import Command
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import SERVER, ClientFactory, frame_bytes


@pytest.mark.parametrize("command", ["CONNECT", "STOMP"])
@pytest.mark.parametrize(
    ("accept_version", "expected"),
    [
        (None, "1.0"),
        ("1.0", "1.0"),
        ("1.1", "1.1"),
        ("1.2", "1.2"),
        ("1.0,1.1", "1.1"),
        ("1.0,1.1,1.2", "1.2"),
        ("1.2,1.0", "1.2"),
        ("1.1,2.0", "1.1"),
        (" 1.0 , 1.1 ", "1.1"),
    ],
)
async def test_connected_headers(
    gateway: Gateway,
    open_client: ClientFactory,
    command: str,
    accept_version: str | None,
    expected: str,
) -> None:
    client = await open_client(gateway, connect=False)
    headers = [] if accept_version is None else [("accept-version", accept_version)]
    await client.send_raw(frame_bytes(command, headers))
    connected = await client.expect(Command.CONNECTED)
    assert connected.get("version") == expected
    assert connected.get("server") == SERVER
    assert connected.get("heart-beat") == "0,10000"
    assert re.fullmatch(r"[0-9a-f]{16}", connected.get("session", ""))
    assert connected.body == b""


async def test_sessions_are_unique(gateway: Gateway, open_client: ClientFactory) -> None:
    sessions = set()
    for _ in range(5):
        client = await open_client(gateway, connect=False)
        sessions.add((await client.connect()).get("session"))
    assert len(sessions) == 5


async def test_unsupported_version(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway, connect=False)
    await client.send_raw(frame_bytes("CONNECT", [("accept-version", "2.0,3.1")]))
    error = await client.expect_error_and_close()
    assert error.get("message") == "unsupported protocol version"
    assert error.get("version") == "1.0,1.1,1.2"


@pytest.mark.parametrize(
    ("client_beat", "config", "expected"),
    [
        (None, {}, "0,10000"),
        ("0,0", {}, "0,10000"),
        ("0,500", {}, "1000,10000"),  # not more often than the floor
        ("0,5000", {}, "5000,10000"),  # as often as the client asks
        ("3000,2000", {"heartbeat_interval": 0}, "2000,0"),
        ("0,50", {"heartbeat_floor": 20, "heartbeat_interval": 700}, "50,700"),
    ],
)
async def test_heart_beat_offer(
    make_gateway: GatewayFactory,
    open_client: ClientFactory,
    client_beat: str | None,
    config: dict[str, Any],
    expected: str,
) -> None:
    gateway = await make_gateway(**config)
    client = await open_client(gateway, connect=False)
    connected = await client.connect("1.2", heart_beat=client_beat)
    assert connected.get("heart-beat") == expected


async def test_invalid_heart_beat_header(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway, connect=False)
    await client.send_raw(frame_bytes("CONNECT", [("accept-version", "1.2"), ("heart-beat", "x")]))
    error = await client.expect_error_and_close()
    assert error.get("message") == "invalid heart-beat header"


async def test_connect_headers_are_not_unescaped(
    gateway: Gateway, open_client: ClientFactory
) -> None:
    # "\q" is an undefined escape: fatal in a 1.2 frame, literal text in CONNECT.
    client = await open_client(gateway, connect=False)
    connected = await client.connect("1.2", headers=[("login", "a\\qb"), ("passcode", "x\\cy:z")])
    assert connected.get("version") == "1.2"
