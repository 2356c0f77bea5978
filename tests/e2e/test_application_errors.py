"""Application errors: reported on the errors queue; the connection stays open."""

from __future__ import annotations

import json

import pytest

from gateway import Gateway
from protocol import Command
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import ERRORS, ClientFactory, chat_body, chat_text

APPLICATION_ERRORS: list[tuple[str, str, bytes, str]] = [
    # (id, destination, body, a word of the reason)
    ("invalid-json", "/pub/chat/1", b"{not json", "JSON"),
    ("not-utf8", "/pub/chat/1", b"\xff\xfe", "JSON"),
    ("json-array", "/pub/chat/1", b"[1, 2]", "object"),
    ("json-string", "/pub/chat/1", b'"text"', "object"),
    ("empty-body", "/pub/chat/1", b"", "JSON"),
    ("missing-member-id", "/pub/chat/1", b'{"nickname":"n","message":"m"}', "memberId"),
    (
        "member-id-bool",
        "/pub/chat/1",
        b'{"memberId":true,"nickname":"n","message":"m"}',
        "memberId",
    ),
    (
        "member-id-float",
        "/pub/chat/1",
        b'{"memberId":1.5,"nickname":"n","message":"m"}',
        "memberId",
    ),
    ("missing-nickname", "/pub/chat/1", b'{"memberId":1,"message":"m"}', "nickname"),
    ("message-not-string", "/pub/chat/1", b'{"memberId":1,"nickname":"n","message":5}', "message"),
    ("no-text-no-file", "/pub/chat/1", b'{"memberId":1,"nickname":"n"}', "message"),
    ("file-id-bool", "/pub/chat/1", b'{"memberId":1,"nickname":"n","fileId":false}', "fileId"),
    ("too-long", "/pub/chat/1", b'{"memberId":1,"nickname":"n","message":"12345678901"}', "longer"),
    ("unknown-pub", "/pub/nowhere", chat_body(), "unknown destination"),
    ("pub-prefix-only", "/pub", chat_body(), "unknown destination"),
    ("outside-prefixes", "/elsewhere/chat/1", chat_body(), "unknown destination"),
    ("broker-send", "/sub/chat/1", chat_body(), "not allowed"),
    ("room-abc", "/pub/chat/abc", chat_body(), "room id"),
    ("room-negative", "/pub/chat/-1", chat_body(), "room id"),
    ("room-zero", "/pub/chat/0", chat_body(), "room id"),
    ("room-leading-zero", "/pub/chat/01", chat_body(), "room id"),
    ("room-empty", "/pub/chat/", chat_body(), "room id"),
    ("room-2-70", f"/pub/chat/{2**70}", chat_body(), "room id"),
    ("room-2-63", f"/pub/chat/{2**63}", chat_body(), "room id"),
    ("room-fullwidth-digit", "/pub/chat/１", chat_body(), "room id"),
]


@pytest.mark.parametrize(
    ("destination", "body", "reason"),
    [case[1:] for case in APPLICATION_ERRORS],
    ids=[case[0] for case in APPLICATION_ERRORS],
)
async def test_application_error(
    make_gateway: GatewayFactory,
    open_client: ClientFactory,
    destination: str,
    body: bytes,
    reason: str,
) -> None:
    gateway = await make_gateway(max_message_length=10)
    client = await open_client(gateway)
    await client.subscribe(ERRORS, "errors")
    await client.subscribe("/sub/chat/1", "room")
    await client.send("SEND", [("destination", destination), ("receipt", "bad")], body)
    frames = await client.barrier()
    assert [frame.command for frame in frames] == [Command.MESSAGE]  # and no RECEIPT
    report = frames[0]
    assert report.get("destination") == ERRORS
    assert report.get("subscription") == "errors"
    assert report.get("receipt-id") == "bad"
    assert reason in report.get("message", "")
    assert report.body.decode() == report.get("message")
    assert (report.get("content-type") or "").startswith("text/plain")
    # The session goes on.
    await client.send_chat(1, chat_body("still here"))
    assert chat_text(await client.expect(Command.MESSAGE)) == "still here"


async def test_largest_room_id_and_message_length_accepted(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    gateway = await make_gateway(max_message_length=10)
    client = await open_client(gateway)
    room = 2**63 - 1
    await client.subscribe(f"/sub/chat/{room}")
    await client.send_chat(room, chat_body("가" * 10))
    message = await client.expect(Command.MESSAGE)
    assert json.loads(message.body)["chatRoomId"] == room
    assert chat_text(message) == "가" * 10


@pytest.mark.parametrize(
    "destination", ["/sub/chat/abc", "/sub/chat/0", "/elsewhere", "/pub/chat/1", "/sub"]
)
async def test_subscribe_application_error(
    gateway: Gateway, open_client: ClientFactory, destination: str
) -> None:
    client = await open_client(gateway)
    await client.subscribe(ERRORS, "errors")
    await client.send("SUBSCRIBE", [("id", "bad"), ("destination", destination), ("receipt", "s")])
    frames = await client.barrier()
    assert [(frame.command, frame.get("receipt-id")) for frame in frames] == [
        (Command.MESSAGE, "s")
    ]
    assert len(gateway.registry) == 1
    # The refused id is not live: it can be used.
    await client.subscribe("/sub/chat/1", "bad")


async def test_application_error_without_errors_subscription(
    gateway: Gateway, open_client: ClientFactory
) -> None:
    client = await open_client(gateway)
    await client.send("SEND", [("destination", "/pub/chat/1"), ("receipt", "bad")], b"{")
    assert await client.barrier() == []


async def test_errors_go_only_to_the_offending_session(
    gateway: Gateway, open_client: ClientFactory
) -> None:
    offender = await open_client(gateway)
    bystander = await open_client(gateway)
    for client in (offender, bystander):
        await client.subscribe(ERRORS, "errors")
    await offender.send("SEND", [("destination", "/pub/chat/x")], chat_body())
    assert len(await offender.barrier()) == 1
    assert await bystander.barrier() == []
