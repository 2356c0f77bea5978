"""
Interoperability with the ``stomper`` client library (0.4.3).

stomper builds the client frames, which go over a raw WebSocket; stomper's own
parser (:func:`stomper.unpack_frame`, :class:`stomper.Frame`) reads what the
gateway answers. stomper speaks STOMP 1.1, one frame per string.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import stomper
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway import Gateway

TIMEOUT = 5.0


@pytest.fixture
async def ws(gateway: Gateway) -> AsyncIterator[ClientConnection]:
    async with connect(
        f"ws://127.0.0.1:{gateway.port}/ws",
        subprotocols=[Subprotocol("v11.stomp")],
        open_timeout=TIMEOUT,
    ) as websocket:
        yield websocket


async def receive(ws: ClientConnection) -> dict[str, Any]:
    """Read one WebSocket message (the gateway sends one frame each) with stomper."""
    message = await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert isinstance(message, str)
    assert message.endswith("\0")
    unpacked: dict[str, Any] = stomper.unpack_frame(message)
    return unpacked


async def stomper_connect(ws: ClientConnection) -> stomper.Engine:
    await ws.send(stomper.connect("guest", "guest", "localhost"))
    engine = stomper.Engine()
    connected = await receive(ws)
    assert connected["cmd"] == "CONNECTED"
    assert connected["headers"]["version"] == "1.1"
    assert engine.react(connected) == stomper.NO_RESPONSE_NEEDED
    assert engine.sessionId == connected["headers"]["session"]
    return engine


def packed(command: str, body: str = "", **headers: str) -> str:
    frame = stomper.Frame()
    frame.cmd = command
    frame.headers = {name.replace("_", "-"): value for name, value in headers.items()}
    frame.body = body
    text: str = frame.pack()
    return text


async def test_subprotocol(ws: ClientConnection) -> None:
    assert ws.subprotocol == "v11.stomp"


async def test_chat_round_trip(ws: ClientConnection) -> None:
    await stomper_connect(ws)
    await ws.send(stomper.subscribe("/sub/chat/4", "sub-4"))
    fields = {"memberId": 7, "nickname": "헨헨", "message": '안녕하세요 👋 {"quoted": [1]}'}
    await ws.send(
        stomper.send(
            "/pub/chat/4", json.dumps(fields, ensure_ascii=False), content_type="application/json"
        )
    )
    message = await receive(ws)
    assert message["cmd"] == "MESSAGE"
    headers = message["headers"]
    assert headers["destination"] == "/sub/chat/4"
    assert headers["subscription"] == "sub-4"
    assert headers["content-type"] == "application/json"
    payload = json.loads(message["body"])
    assert payload["chatRoomId"] == 4
    assert payload["memberId"] == 7
    assert payload["nickname"] == "헨헨"
    assert payload["message"] == fields["message"]
    assert payload["id"] == headers["message-id"]
    assert int(headers["content-length"]) == len(message["body"].encode())


async def test_frame_unpack(ws: ClientConnection) -> None:
    await stomper_connect(ws)
    await ws.send(stomper.subscribe("/sub/chat/1", "s"))
    await ws.send(stomper.send("/pub/chat/1", '{"memberId":1,"nickname":"n","message":"m"}'))
    frame = stomper.Frame()
    frame.unpack(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert frame.cmd == "MESSAGE"
    assert frame.headers["subscription"] == "s"
    assert json.loads(frame.body)["message"] == "m"


async def test_receipts_and_unsubscribe(ws: ClientConnection, gateway: Gateway) -> None:
    await stomper_connect(ws)
    await ws.send(packed("SUBSCRIBE", id="s", destination="/sub/chat/1", receipt="sub"))
    receipt = await receive(ws)
    assert (receipt["cmd"], receipt["headers"]["receipt-id"]) == ("RECEIPT", "sub")
    assert len(gateway.registry) == 1
    await ws.send(stomper.unsubscribe("s"))
    await ws.send(packed("SEND", "{}", destination="/pub/ping", receipt="ping"))
    assert (await receive(ws))["headers"]["receipt-id"] == "ping"
    assert len(gateway.registry) == 0


async def test_engine_acknowledges(ws: ClientConnection) -> None:
    engine = await stomper_connect(ws)
    await ws.send(stomper.subscribe("/sub/chat/1", "s", ack="client"))
    await ws.send(stomper.send("/pub/chat/1", '{"memberId":1,"nickname":"n","message":"m"}'))
    message = await receive(ws)
    reply = engine.react(message)
    assert reply.startswith("ACK\n")
    await ws.send(reply)
    await ws.send(packed("BEGIN", transaction="t", receipt="after-ack"))
    answer = await receive(ws)
    assert (answer["cmd"], answer["headers"].get("receipt-id")) == ("RECEIPT", "after-ack")
    # Acknowledged already: a second ACK names no pending message.
    await ws.send(stomper.ack(message["headers"]["message-id"], "s"))
    error = await receive(ws)
    assert error["cmd"] == "ERROR"
    assert error["headers"]["message"] == "unknown ack id"
    assert engine.react(error) == stomper.NO_RESPONSE_NEEDED


async def test_transaction(ws: ClientConnection) -> None:
    await stomper_connect(ws)
    await ws.send(stomper.subscribe("/sub/chat/1", "s"))
    await ws.send(stomper.begin("tx-1"))
    body = '{"memberId":1,"nickname":"n","message":"held"}'
    await ws.send(stomper.send("/pub/chat/1", body, transactionid="tx-1"))
    await ws.send(packed("SEND", "", destination="/pub/ping", receipt="barrier"))
    assert (await receive(ws))["cmd"] == "RECEIPT"  # nothing delivered yet
    await ws.send(stomper.commit("tx-1"))
    message = await receive(ws)
    assert json.loads(message["body"])["message"] == "held"
    await ws.send(stomper.begin("tx-2"))
    await ws.send(stomper.send("/pub/chat/1", body, transactionid="tx-2"))
    await ws.send(stomper.abort("tx-2"))
    await ws.send(packed("SEND", "", destination="/pub/ping", receipt="end"))
    assert (await receive(ws))["cmd"] == "RECEIPT"


async def test_nack(ws: ClientConnection) -> None:
    await stomper_connect(ws)
    await ws.send(stomper.subscribe("/sub/chat/1", "s", ack="client-individual"))
    await ws.send(stomper.send("/pub/chat/1", '{"memberId":1,"nickname":"n","message":"m"}'))
    message = await receive(ws)
    await ws.send(stomper.nack(message["headers"]["message-id"], "s"))
    await ws.send(packed("SEND", "", destination="/pub/ping", receipt="r"))
    assert (await receive(ws))["cmd"] == "RECEIPT"


async def test_packed_disconnect(ws: ClientConnection) -> None:
    await stomper_connect(ws)
    await ws.send(packed("DISCONNECT", receipt="bye"))
    receipt = await receive(ws)
    assert (receipt["cmd"], receipt["headers"]["receipt-id"]) == ("RECEIPT", "bye")
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert ws.close_code == 1000


async def test_stomper_disconnect_is_malformed(ws: ClientConnection) -> None:
    # stomper.disconnect() omits the blank line that ends the headers, so the NUL
    # reads as a header line without a colon: the gateway (like Spring) refuses it.
    assert stomper.disconnect("bye") == "DISCONNECT\nreceipt:bye\n\x00\n"
    await stomper_connect(ws)
    await ws.send(stomper.disconnect("bye"))
    error = await receive(ws)
    assert error["cmd"] == "ERROR"
    assert error["headers"]["message"] == "malformed header"
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert ws.close_code == 1002
