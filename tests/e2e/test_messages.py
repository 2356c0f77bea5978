"""Bodies: what a SEND delivers to subscribers, byte for byte and in order."""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import time
import zoneinfo

import pytest

from gateway import Gateway
from protocol import Command
from tests.support.servers import UNLIMITED_SENDS, GatewayFactory
from tests.support.stomp_client import CHAT_FIELDS, ClientFactory, chat_body, chat_text, frame_bytes


@pytest.mark.parametrize(
    ("body", "as_text"),
    [
        (b"\x00nul\x00inside\x00", True),
        (b"\xff\x00\xfe\x00binary", False),
        ("한국어\x00😀".encode(), True),
    ],
    ids=["utf8-with-nuls", "not-utf8", "korean-with-nul"],
)
async def test_content_length_body_relayed_intact(
    make_gateway: GatewayFactory, open_client: ClientFactory, body: bytes, as_text: bool
) -> None:
    gateway = await make_gateway(allow_broker_send=True)
    subscriber = await open_client(gateway)
    await subscriber.subscribe("/sub/x", "s")
    sender = await open_client(gateway)
    await sender.send_raw(
        frame_bytes(
            "SEND",
            [
                ("destination", "/sub/x"),
                ("content-type", "application/octet-stream"),
                ("content-length", str(len(body))),
                ("x-custom", "kept"),
                ("receipt", "sent"),
            ],
            body,
        )
    )
    await sender.expect_receipt("sent")
    message, is_text = await subscriber.read_frame_typed()
    assert message.command is Command.MESSAGE
    assert message.body == body
    assert is_text is as_text
    assert isinstance(subscriber.received[-1], str if as_text else bytes)
    assert message.get("content-length") == str(len(body))
    assert message.get("content-type") == "application/octet-stream"
    assert message.get("x-custom") == "kept"
    assert message.get("subscription") == "s"
    assert re.fullmatch(r"[0-9a-f]{24}", message.get("message-id", ""))
    assert "receipt" not in message


async def test_chat_send_with_content_length(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/1")
    body = chat_body("with length")
    await client.send_raw(
        frame_bytes(
            "SEND",
            [("destination", "/pub/chat/1"), ("content-length", str(len(body)))],
            body,
        )
    )
    assert chat_text(await client.read_frame()) == "with length"


async def test_chat_message_frame(make_gateway: GatewayFactory, open_client: ClientFactory) -> None:
    gateway = await make_gateway(timezone="Asia/Seoul")
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/42", "room")
    body = json.dumps({"memberId": "17", "nickname": "nick", "message": "hello"}).encode()
    await client.send_chat(42, body)
    message = await client.expect(Command.MESSAGE)
    payload = json.loads(message.body)
    assert list(payload) == CHAT_FIELDS
    assert payload["chatRoomId"] == 42
    assert payload["memberId"] == 17
    assert payload["nickname"] == "nick"
    assert payload["message"] == "hello"
    assert payload["fileId"] is None
    assert payload["fileName"] is None
    assert message.get("message-id") == payload["id"]
    assert re.fullmatch(r"[0-9a-f]{24}", payload["id"])
    assert message.get("destination") == "/sub/chat/42"
    assert message.get("subscription") == "room"
    assert message.get("content-type") == "application/json"
    assert message.get("content-length") == str(len(message.body))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?", payload["createAt"])
    created = datetime.datetime.fromisoformat(payload["createAt"][:19])
    seoul = datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Seoul")).replace(tzinfo=None)
    assert abs((seoul - created).total_seconds()) < 60


async def test_file_message(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/1")
    body = {"memberId": 1, "nickname": "n", "fileId": 55, "fileName": "사진.png"}
    await client.send_chat(1, json.dumps(body).encode())
    payload = json.loads((await client.expect(Command.MESSAGE)).body)
    assert payload["message"] is None
    assert payload["fileId"] == 55
    assert payload["fileName"] == "사진.png"


async def test_korean_and_emoji_byte_exact(gateway: Gateway, open_client: ClientFactory) -> None:
    subscriber = await open_client(gateway)
    await subscriber.subscribe("/sub/chat/7")
    sender = await open_client(gateway)
    text = "안녕하세요 👋🏽 세계! 👨‍👩‍👧‍👦 \u00e9\u0301 \U0001f1f0\U0001f1f7"
    nickname = "헨헨🐔"
    await sender.send_chat(7, chat_body(text, nickname=nickname))
    message, is_text = await subscriber.read_frame_typed()
    assert is_text
    assert text.encode() in message.body
    assert nickname.encode() in message.body
    payload = json.loads(message.body.decode("utf-8"))
    assert payload["message"] == text
    assert payload["nickname"] == nickname
    assert message.get("content-length") == str(len(message.body))


async def test_thousand_messages_arrive_in_order(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    gateway = await make_gateway(**UNLIMITED_SENDS)
    subscriber = await open_client(gateway)
    await subscriber.subscribe("/sub/chat/1000")
    sender = await open_client(gateway)
    for start in range(0, 1000, 100):
        await sender.send_raw(
            b"".join(
                frame_bytes("SEND", [("destination", "/pub/chat/1000")], chat_body(str(n)))
                for n in range(start, start + 100)
            )
        )
    texts = [chat_text(await subscriber.read_frame()) for _ in range(1000)]
    assert texts == [str(n) for n in range(1000)]
    assert await subscriber.barrier() == []

    async def stored() -> list[str]:
        history = await gateway.store.history(1000, before=None, limit=1000)
        return [message.message or "" for message in history]

    deadline = time.monotonic() + 5
    while len(await stored()) < 1000 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert await stored() == texts


async def test_pong_only_to_the_sender(gateway: Gateway, open_client: ClientFactory) -> None:
    pinger = await open_client(gateway)
    other = await open_client(gateway)
    await pinger.subscribe("/sub/pong", "p")
    await other.subscribe("/sub/pong", "p")
    await pinger.send("SEND", [("destination", "/pub/ping"), ("receipt", "ping")])
    pong = await pinger.expect(Command.MESSAGE)
    assert pong.body == b"pong"
    assert pong.get("destination") == "/sub/pong"
    assert pong.get("subscription") == "p"
    await pinger.expect_receipt("ping")
    assert await other.barrier() == []
    assert await pinger.barrier() == []
