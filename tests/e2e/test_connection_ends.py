"""Connection ends: dropped sockets, shutdown, slow consumers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import pytest

from gateway import Gateway
from protocol import Command
from tests.support.servers import UNLIMITED_SENDS, GatewayFactory
from tests.support.stomp_client import (
    ERRORS,
    ClientFactory,
    Closed,
    StompTestClient,
    chat_body,
    frame_bytes,
)
from tests.support.waiting import eventually


@pytest.mark.parametrize("how", ["close", "abort"])
async def test_dropped_socket_empties_the_registry(
    gateway: Gateway, open_client: ClientFactory, how: str
) -> None:
    client = await open_client(gateway)
    for room in (1, 2, 3):
        await client.subscribe(f"/sub/chat/{room}", f"s{room}")
    await client.subscribe(ERRORS, "errors")
    other = await open_client(gateway)
    await other.subscribe("/sub/chat/1", "other")
    assert len(gateway.registry) == 5
    if how == "close":
        await client.close()
    else:
        client.ws.transport.abort()
    await eventually(lambda: len(gateway.registry) == 1)
    assert gateway.registry.destinations == 1
    await other.send_chat(1, chat_body())
    assert (await other.expect(Command.MESSAGE)).get("subscription") == "other"


async def test_shutdown(make_gateway: GatewayFactory, open_client: ClientFactory) -> None:
    gateway = await make_gateway()
    clients = [
        await open_client(gateway, "1.2"),
        await open_client(gateway, "1.0"),
        await open_client(gateway, connect=False),
    ]
    await clients[0].subscribe("/sub/chat/1")
    await clients[1].subscribe("/sub/chat/1")
    port = gateway.port
    await gateway.shutdown()
    for client in clients:
        frames, code = await client.read_until_closed()
        assert [(frame.command, frame.get("message")) for frame in frames] == [
            (Command.ERROR, "server shutting down")
        ]
        assert code == 1001
    assert len(gateway.registry) == 0
    assert not gateway.connections
    with pytest.raises(OSError):  # noqa: PT011 - refused, whatever the errno
        await StompTestClient.open(port)


async def test_slow_consumer_is_disconnected(
    make_gateway: GatewayFactory, open_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway")
    gateway = await make_gateway(
        allow_broker_send=True, max_outbound_bytes=300_000, max_frame_size=250_000
    )
    # A client that stops reading: a small receive buffer, one message queued at most.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", gateway.port))
    slow = await open_client(gateway, sock=sock, max_queue=1, max_size=None)
    await slow.subscribe("/sub/big", "slow")
    fast = await open_client(gateway, max_size=None)
    await fast.subscribe("/sub/big", "fast")
    sender = await open_client(gateway)
    body = bytes(200_000)
    sent = 0
    while "slow consumer" not in caplog.text:
        assert sent < 300, "the slow consumer was never disconnected"
        await sender.send(
            "SEND", [("destination", "/sub/big"), ("content-length", str(len(body)))], body
        )
        sent += 1
        message = await fast.expect(Command.MESSAGE)  # in step: the fast one never lags
        assert message.body == body
    await sender.send("SEND", [("destination", "/sub/big")], b"after")
    assert (await fast.expect(Command.MESSAGE)).body == b"after"
    frames, code = await slow.read_until_closed()
    assert code == 1008
    assert 0 < len(frames) < sent
    await eventually(lambda: len(gateway.registry) == 1)
    assert [sub.id for sub in gateway.registry.subscribers("/sub/big")] == ["fast"]


async def test_burst_from_one_client_does_not_drop_readers(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    gateway = await make_gateway(**UNLIMITED_SENDS)
    subscriber = await open_client(gateway, max_size=None)
    await subscriber.subscribe("/sub/chat/1")
    sender = await open_client(gateway)
    frame = frame_bytes("SEND", [("destination", "/pub/chat/1")], chat_body("x" * 600))
    await sender.send_raw(frame * 1000)  # well under the 1 MiB WebSocket message limit
    received = 0
    with contextlib.suppress(Closed):
        while received < 1000:
            await subscriber.expect(Command.MESSAGE)
            received += 1
    assert received == 1000


async def test_closed_error(gateway: Gateway, open_client: ClientFactory) -> None:
    """The helper reports a closed socket instead of hanging."""
    client = await open_client(gateway)
    await client.send("DISCONNECT")
    with pytest.raises(Closed) as info:
        await client.read_frame()
    assert info.value.code == 1000
