"""Who may open a WebSocket at all: allowed origins, and connections per address."""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from tests.support.servers import GatewayFactory
from tests.support.stomp_client import StompTestClient, connected

ALLOWED = "https://chat.example.com"


async def status_of(port: int, path: str, origin: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n".encode()
    )
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


async def refused(port: int, **kwargs: object) -> int:
    with pytest.raises(InvalidStatus) as info:
        await StompTestClient.open(port, **kwargs)
    status: int = info.value.response.status_code
    return status


async def test_foreign_origins_are_refused_with_403(
    make_gateway: GatewayFactory, clients: list[StompTestClient]
) -> None:
    gateway = await make_gateway(allowed_origin=(ALLOWED, "http://localhost:5173"))
    assert await refused(gateway.port, origin=Origin("https://evil.example")) == 403
    for path in ("/ws", "/ws/websocket", "/ws/0/abc/websocket", "/ws/info"):
        status, body = await status_of(gateway.port, path, "https://evil.example")
        assert (status, "origin https://evil.example not allowed" in body) == (403, True)
    for origin in (Origin(ALLOWED), None):  # non-browser clients send no Origin
        client = await StompTestClient.open(gateway.port, origin=origin)
        clients.append(client)
        await client.connect("1.2")
    assert (await status_of(gateway.port, "/ws/info", ALLOWED))[0] == 200
    assert gateway.metrics.handshakes_refused == {"origin not allowed": 5}


async def test_every_origin_is_allowed_by_default(
    gateway_with_log: tuple[GatewayFactory, pytest.LogCaptureFixture],
    clients: list[StompTestClient],
) -> None:
    make_gateway, caplog = gateway_with_log
    gateway = await make_gateway()
    client = await StompTestClient.open(gateway.port, origin=Origin("https://anywhere.example"))
    clients.append(client)
    await client.connect("1.2")
    assert any("every origin is allowed" in r.getMessage() for r in caplog.records)


@pytest.fixture
def gateway_with_log(
    make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> tuple[GatewayFactory, pytest.LogCaptureFixture]:
    caplog.set_level("WARNING", "gateway.app")
    return make_gateway, caplog


async def test_a_flood_from_one_address_is_refused_while_others_connect(
    make_gateway: GatewayFactory, clients: list[StompTestClient]
) -> None:
    gateway = await make_gateway(max_connections_per_address=5)
    first = [await connected(gateway.port, clients) for _ in range(5)]
    flood = await asyncio.gather(*(refused(gateway.port) for _ in range(20)))
    assert flood == [429] * 20
    assert gateway.metrics.handshakes_refused == {"too many connections per address": 20}
    # 127.0.0.2 is another source address on Linux loopback.
    other = await StompTestClient.open(gateway.port, local_addr=("127.0.0.2", 0))
    clients.append(other)
    await other.connect("1.2")
    assert other.ws.local_address[0] == "127.0.0.2"
    # A place freed is a place taken again.
    await first[0].close()
    async with asyncio.timeout(5):
        while len(gateway.connections) > 5:
            await asyncio.sleep(0.01)
    await connected(gateway.port, clients)
    assert await refused(gateway.port) == 429
