"""
Heart-beats on the WebSocket wire, and the request head read once, below
websockets (gateway/transport/websocket.py).
"""

from __future__ import annotations

import asyncio
import os

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.streams import StreamReader

from gateway.transport.websocket import SERVER_BEAT, client_beat, hand_request, write_server_beat
from protocol import HeartBeat
from tests.support.beats import spy_on_beats
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import StompTestClient
from tests.support.waiting import eventually


def masked(payload: bytes, first: int = 0x81, mask: bytes | None = None) -> bytes:
    """A client frame (RFC 6455 §5.2, §5.3) with a 7-bit length."""
    key = os.urandom(4) if mask is None else mask
    data = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([first, 0x80 | len(payload)]) + key + data


def test_server_beat_is_one_unmasked_final_text_frame_of_an_eol() -> None:
    reader = StreamReader()
    reader.feed_data(SERVER_BEAT)
    parser = Frame.parse(reader.read_exact, mask=False)
    with pytest.raises(StopIteration) as stop:
        next(parser)
    frame = stop.value.value
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT, True, b"\n")
    assert reader.buffer == b""  # nothing after it


@pytest.mark.parametrize("payload", [b"\n", b"\r\n"])
def test_client_beat_is_a_masked_final_text_frame_of_an_eol(payload: bytes) -> None:
    for _ in range(50):
        assert client_beat(masked(payload))
    assert client_beat(masked(payload, mask=b"\0\0\0\0"))


@pytest.mark.parametrize(
    "data",
    [
        masked(b"\n", first=0x01),  # not final: the first fragment of a message
        masked(b"\n", first=0x80),  # a continuation frame
        masked(b"\n", first=0x82),  # binary
        masked(b"\n", first=0x89),  # ping
        masked(b"\n", first=0xC1),  # RSV1: compressed (permessage-deflate)
        masked(b"x"),
        masked(b"\n\n"),
        masked(b"\r"),
        masked(b"\n") + masked(b"\n"),  # two beats in one read go the usual way
        masked(b"\n")[:6],
        b"\x81\x01\n",  # unmasked: RFC 6455 §5.1 says the server must fail it
        b"",
    ],
)
def test_anything_else_is_not_a_client_beat(data: bytes) -> None:
    assert not client_beat(data)


async def test_client_beats_are_taken_at_the_socket_but_not_an_eol_inside_a_frame(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(heartbeat_interval=1000)
    async with await StompTestClient.open(gateway.port) as client:
        await client.connect("1.2", heart_beat="1000,0")
        [connection] = gateway.connections
        answers = spy_on_beats(connection)
        for beat in ("\n", "\r\n"):
            count = len(answers)
            await client.send_raw(beat)
            await eventually(lambda: len(answers) > count)  # noqa: B023
        assert answers == [True, True]
        # STOMP 1.2 §Heart-beating: EOLs are beats between frames only; inside
        # one (split over WebSocket messages) an EOL is part of the frame.
        for part in ("BEGIN\ntransaction:t\nreceipt:r", "\n", "\n\0"):
            count = len(answers)
            await client.send_raw(part)
            await eventually(lambda: len(answers) > count)  # noqa: B023
            await asyncio.sleep(0.02)  # each in a read of its own: the reader is done with it
        await client.expect_receipt("r")
        assert answers[2:] == [False] * 3
        assert await client.barrier() == []
    assert gateway.metrics.heartbeat_timeouts == 0


async def test_no_beats_are_taken_without_negotiated_client_beats(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(heartbeat_interval=1000)
    async with await StompTestClient.open(gateway.port) as client:
        await client.connect("1.2", heart_beat="0,0")
        [connection] = gateway.connections
        assert getattr(connection.websocket, "beats", None) is None
        await client.send_raw("\n")
        assert await client.barrier() == []


@pytest.fixture
def direct_writes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record whether each server beat went straight to the transport."""
    written: list[bool] = []
    write = write_server_beat

    def recorded(websocket: object) -> bool:
        written.append(write(websocket))  # type: ignore[arg-type]
        return written[-1]

    monkeypatch.setattr("gateway.transport.outbound.write_server_beat", recorded)
    return written


async def test_server_beats_go_straight_to_the_transport(
    make_gateway: GatewayFactory, direct_writes: list[bool]
) -> None:
    gateway = await make_gateway(heartbeat_floor=100)
    async with await StompTestClient.open(gateway.port) as client:
        await client.connect("1.2", heart_beat="0,100")
        for _ in range(3):
            event, is_text = await client.read_event(timeout=2)
            assert isinstance(event, HeartBeat)
            assert is_text
            assert client.received[-1] == "\n"
        assert direct_writes[:3] == [True] * 3
        # Frames still go through websockets afterwards, in order.
        assert await client.barrier() == []


# The request head, read once for websockets.


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record whether each request head read by the gateway went to websockets as read."""
    results: list[bool] = []
    hand = hand_request

    def recorded(websocket: ServerConnection, request: Request) -> bool:
        results.append(hand(websocket, request))
        return results[-1]

    monkeypatch.setattr("gateway.http.api.hand_request", recorded)
    return results


async def test_a_request_head_is_handed_to_websockets_as_read(
    make_gateway: GatewayFactory, handed: list[bool]
) -> None:
    gateway = await make_gateway()
    async with await StompTestClient.open(gateway.port) as client:
        frame = await client.connect("1.2")
        assert frame.command.value == "CONNECTED"
    assert handed == [True]


async def test_frames_sent_with_the_request_head_are_read_after_it(
    make_gateway: GatewayFactory, handed: list[bool]
) -> None:
    # A client may send its first frames before the 101 (RFC 6455 §4.1 lets it
    # once the handshake is sent): they follow the head in one read.
    gateway = await make_gateway()
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    head = (
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n"
    )
    writer.write(head.encode() + masked(b"CONNECT\naccept-version:1.2\nhost:h\n\n\0"))
    try:
        status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert status.startswith(b"HTTP/1.1 101 ")
        frames = StreamReader()
        parsing = Frame.parse(frames.read_exact, mask=False)
        frames.feed_data(await asyncio.wait_for(reader.read(4096), 5))
        with pytest.raises(StopIteration) as parsed:
            next(parsing)
        frame = parsed.value.value
        assert frame.opcode is Opcode.TEXT
        assert frame.data.startswith(b"CONNECTED\n")
    finally:
        writer.close()
    assert handed == [True]
