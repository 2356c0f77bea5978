"""
Defaults under which existing clients connect unchanged (issue 14, point 6):
closes logged as they happened, and the limits a chat client meets first.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from websockets.asyncio.client import connect

from gateway import Gateway
from tests.conftest import GatewayFactory

from .stomp_client import StompTestClient, frame_bytes

GATEWAY_LOG = "gateway.connection"


def closed_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == GATEWAY_LOG and " closed remote=" in record.getMessage()
    ]


async def wait_for_closed_line(caplog: pytest.LogCaptureFixture) -> str:
    for _ in range(500):
        if lines := closed_lines(caplog):
            return lines[-1]
        await asyncio.sleep(0.01)
    raise AssertionError("no session closed line")


async def open_connected(gateway: Gateway) -> StompTestClient:
    client = await StompTestClient.open(gateway.port, max_size=None)
    await client.connect("1.2")
    return client


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        (b"SEND\ndestination:/pub/chat/4\n\n" + b"x" * (3 * 2**20) + b"\0", 1009, "exceeds limit"),
        (b"SEND\ndestination:/pub/chat/4\n\n\xff\xfe\0", 1007, "invalid"),
    ],
    ids=["message-too-big", "invalid-utf-8"],
)
async def test_closes_websockets_starts_are_logged_with_their_code_and_the_gateway_as_closer(
    gateway: Gateway,
    caplog: pytest.LogCaptureFixture,
    message: bytes,
    code: int,
    reason: str,
) -> None:
    caplog.set_level("INFO", GATEWAY_LOG)
    client = await open_connected(gateway)
    if code == 1007:  # a text message that is not UTF-8: bypass the client's own encoding
        await client.ws.send(message, text=True)
    else:
        await client.send_raw(message, binary=True)
    await client.ws.wait_closed()
    line = await wait_for_closed_line(caplog)
    assert f"code={code} " in line, line
    assert "closed_by=gateway" in line, line
    assert reason in line.split("reason=", 1)[1], line
    assert "client closed the connection" not in line


async def test_a_client_close_is_logged_with_its_code_and_the_client_as_closer(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", GATEWAY_LOG)
    client = await open_connected(gateway)
    await client.ws.close(4000, "tab closed")
    line = await wait_for_closed_line(caplog)
    assert re.search(r"code=4000 reason=tab closed closed_by=client ", line), line


async def test_a_lost_connection_is_logged_as_1006(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", GATEWAY_LOG)
    client = await open_connected(gateway)
    client.ws.transport.abort()
    line = await wait_for_closed_line(caplog)
    assert re.search(r"code=1006 reason=connection lost closed_by=client ", line), line


async def test_a_close_the_gateway_asks_for_names_the_gateway(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", GATEWAY_LOG)
    async with connect(f"ws://127.0.0.1:{gateway.port}/ws") as ws:
        await ws.send(frame_bytes("NOT-A-COMMAND").decode())
        await ws.wait_closed()
    line = await wait_for_closed_line(caplog)
    assert re.search(r"code=1002 reason=.* closed_by=gateway ", line), line


async def test_disconnect_is_logged_as_the_clients_close(
    make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", GATEWAY_LOG)
    gateway = await make_gateway()
    client = await open_connected(gateway)
    await client.send("DISCONNECT", [("receipt", "bye")])
    await client.ws.wait_closed()
    line = await wait_for_closed_line(caplog)
    assert re.search(r"code=1000 reason=client disconnected closed_by=client ", line), line
