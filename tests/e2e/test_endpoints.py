"""Subprotocols and endpoints: the WebSocket handshake and its options."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from gateway import Gateway
from protocol import Command
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import (
    STOMP_SUBPROTOCOLS,
    ClientFactory,
    StompTestClient,
    chat_body,
    chat_text,
)


@pytest.mark.parametrize(
    ("offered", "selected"),
    [
        (None, None),
        (["foo"], None),
        (["v10.stomp"], "v10.stomp"),
        (["v10.stomp", "v11.stomp"], "v11.stomp"),
        (STOMP_SUBPROTOCOLS, "v12.stomp"),
        (list(reversed(STOMP_SUBPROTOCOLS)), "v12.stomp"),
        (["foo", "v11.stomp", "bar"], "v11.stomp"),
    ],
)
async def test_subprotocol_selection(
    gateway: Gateway,
    open_client: ClientFactory,
    offered: list[str] | None,
    selected: str | None,
) -> None:
    client = await open_client(gateway, subprotocols=offered)
    assert client.ws.subprotocol == selected
    await client.subscribe("/sub/pong")
    await client.send("SEND", [("destination", "/pub/ping")])
    assert (await client.expect(Command.MESSAGE)).body == b"pong"


async def test_unknown_path_refuses_the_handshake(gateway: Gateway) -> None:
    with pytest.raises(InvalidStatus) as info:
        await StompTestClient.open(gateway.port, "/nope")
    assert info.value.response.status_code == 404


async def test_several_endpoints(make_gateway: GatewayFactory, open_client: ClientFactory) -> None:
    gateway = await make_gateway(endpoint=("/ws", "/stomp"))
    first = await open_client(gateway, path="/ws")
    second = await open_client(gateway, path="/stomp")
    await first.subscribe("/sub/chat/3")
    await second.send_chat(3, chat_body("across endpoints"))
    assert chat_text(await first.read_frame()) == "across endpoints"


async def test_permessage_deflate(make_gateway: GatewayFactory, open_client: ClientFactory) -> None:
    gateway = await make_gateway(permessage_deflate=True)
    client = await open_client(gateway, compression="deflate")
    assert [ext.name for ext in client.ws.protocol.extensions] == ["permessage-deflate"]
    await client.subscribe("/sub/chat/1")
    await client.send_chat(1, chat_body("z" * 5000))
    assert chat_text(await client.read_frame()) == "z" * 5000
