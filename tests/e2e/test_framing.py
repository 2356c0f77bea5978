"""
Framing: frames split across or packed into WebSocket messages, text or binary, EOLs between frames.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway import Gateway
from protocol import Command
from tests.support.stomp_client import (
    ClientFactory,
    StompTestClient,
    chat_body,
    chat_text,
    frame_bytes,
)


def session_bytes() -> bytes:
    """CONNECT, SUBSCRIBE, SEND (with content-length) and DISCONNECT, hand-built."""
    body = chat_body("split")
    return b"".join(
        [
            frame_bytes("CONNECT", [("accept-version", "1.2"), ("host", "x")]),
            frame_bytes(
                "SUBSCRIBE", [("id", "s"), ("destination", "/sub/chat/9"), ("receipt", "1")]
            ),
            frame_bytes(
                "SEND",
                [
                    ("destination", "/pub/chat/9"),
                    ("content-length", str(len(body))),
                    ("receipt", "2"),
                ],
                body,
            ),
            frame_bytes("DISCONNECT", [("receipt", "3")]),
        ]
    )


async def check_session_replies(client: StompTestClient) -> None:
    frames, code = await client.read_until_closed()
    assert [frame.command for frame in frames] == [
        Command.CONNECTED,
        Command.RECEIPT,
        Command.MESSAGE,
        Command.RECEIPT,
        Command.RECEIPT,
    ]
    assert [frame.get("receipt-id") for frame in frames if frame.command is Command.RECEIPT] == [
        "1",
        "2",
        "3",
    ]
    assert chat_text(frames[2]) == "split"
    assert code == 1000


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
async def test_frames_split_byte_by_byte(
    gateway: Gateway, open_client: ClientFactory, binary: bool
) -> None:
    client = await open_client(gateway, connect=False)
    for index, byte in enumerate(session_bytes()):
        await client.send_raw(bytes([byte]), binary=binary)
        if index % 50 == 0:
            await asyncio.sleep(0)
    await check_session_replies(client)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
async def test_several_frames_in_one_message(
    gateway: Gateway, open_client: ClientFactory, binary: bool
) -> None:
    client = await open_client(gateway, connect=False)
    await client.send_raw(session_bytes(), binary=binary)
    await check_session_replies(client)


async def test_frames_split_across_messages_at_every_offset(
    gateway: Gateway, open_client: ClientFactory
) -> None:
    data = session_bytes()
    for cut in range(1, len(data), 7):
        client = await open_client(gateway, connect=False)
        await client.send_raw(data[:cut], binary=True)
        await client.send_raw(data[cut:], binary=True)
        await check_session_replies(client)


async def test_binary_websocket_messages(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway, connect=False)
    await client.send_raw(frame_bytes("CONNECT", [("accept-version", "1.2")]), binary=True)
    frame, is_text = await client.read_frame_typed()
    assert frame.command is Command.CONNECTED
    assert is_text  # the server answers in text: the frame is UTF-8
    client.version = "1.2"
    await client.send("SUBSCRIBE", [("id", "s"), ("destination", "/sub/chat/2")], binary=True)
    await client.send("SEND", [("destination", "/pub/chat/2")], chat_body("안녕"), binary=True)
    frame, is_text = await client.read_frame_typed()
    assert chat_text(frame) == "안녕"
    assert is_text


async def test_heart_beat_eols_between_frames(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway, connect=False)
    await client.send_raw(b"\n\r\n")
    await client.send_raw(b"\n" + frame_bytes("CONNECT", [("accept-version", "1.2")]) + b"\r\n\n")
    await client.expect(Command.CONNECTED)
    client.version = "1.2"
    await client.send_raw(b"\n")
    await client.send_raw(
        frame_bytes("SUBSCRIBE", [("id", "s"), ("destination", "/sub/chat/5"), ("receipt", "a")])
        + b"\n\n\r\n"
        + frame_bytes("SEND", [("destination", "/pub/chat/5"), ("receipt", "b")], chat_body())
        + b"\n"
    )
    await client.send_raw(b"\r\n")
    frames = [await client.read_frame() for _ in range(3)]
    assert [frame.command for frame in frames] == [
        Command.RECEIPT,
        Command.MESSAGE,
        Command.RECEIPT,
    ]
    assert await client.barrier() == []
