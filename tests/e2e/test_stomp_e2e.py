"""
The gateway end to end: a real server on a free port, a raw WebSocket client
sending hand-built STOMP frames (see :mod:`tests.support.stomp_client`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import json
import logging
import re
import socket
import time
import zoneinfo
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from gateway import Gateway
from protocol import Command, Frame, HeartBeat
from tests.conftest import UNLIMITED_SENDS, GatewayFactory
from tests.support.stomp_client import (
    CHAT_FIELDS,
    STOMP_SUBPROTOCOLS,
    Closed,
    StompTestClient,
    chat_body,
    frame_bytes,
)

ClientFactory = Callable[..., Awaitable[StompTestClient]]

SERVER = "stomp-gateway/0.1.0"
ERRORS = "/user/queue/errors"


@pytest.fixture
async def open_client(make_gateway: GatewayFactory) -> AsyncIterator[ClientFactory]:
    """Open clients (connected in 1.2 unless told otherwise); all are closed afterwards."""
    clients: list[StompTestClient] = []

    async def open_(
        gateway: Gateway,
        version: str | None = "1.2",
        *,
        connect: bool = True,
        heart_beat: str | None = None,
        **kwargs: Any,
    ) -> StompTestClient:
        client = await StompTestClient.open(gateway.port, **kwargs)
        clients.append(client)
        if connect:
            await client.connect(version, heart_beat=heart_beat)
        return client

    yield open_
    for client in clients:
        await client.close()


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def chat_text(frame: Frame) -> str:
    assert frame.command is Command.MESSAGE, frame
    text: str = json.loads(frame.body)["message"]
    return text


# CONNECT and CONNECTED.


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


# Subprotocols and endpoints.


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


# Framing.


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


# Header escaping.


async def test_escaped_destination_in_1_2(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    gateway = await make_gateway(allow_broker_send=True)
    subscriber = await open_client(gateway)
    await subscriber.send_raw(
        frame_bytes("SUBSCRIBE", [("id", "s\\c1"), ("destination", "/sub/a\\cb"), ("receipt", "r")])
    )
    await subscriber.expect_receipt("r")
    assert [sub.id for sub in gateway.registry.subscribers("/sub/a:b")] == ["s:1"]
    sender = await open_client(gateway)
    await sender.send_raw(
        frame_bytes("SEND", [("destination", "/sub/a\\cb"), ("x-note", "1\\n2\\\\3\\r")], b"hello")
    )
    message = await subscriber.expect(Command.MESSAGE)
    assert message.get("destination") == "/sub/a:b"
    assert message.get("subscription") == "s:1"
    assert message.get("x-note") == "1\n2\\3\r"
    raw = subscriber.received[-1]
    assert isinstance(raw, str)
    assert "\ndestination:/sub/a\\cb\n" in raw
    assert "MESSAGE\nsubscription:s\\c1\n" in raw
    assert "\nx-note:1\\n2\\\\3\\r\n" in raw
    assert message.body == b"hello"


async def test_no_escaping_in_1_0(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway, "1.0")
    await client.send_raw(
        frame_bytes(
            "SUBSCRIBE", [("id", "a\\cb"), ("destination", "/sub/chat/1"), ("receipt", "r")]
        )
    )
    await client.expect_receipt("r")
    assert [sub.id for sub in gateway.registry.subscribers("/sub/chat/1")] == ["a\\cb"]
    await client.send_chat(1, chat_body())
    message = await client.expect(Command.MESSAGE)
    assert message.get("subscription") == "a\\cb"


@pytest.mark.parametrize(
    ("version", "value"),
    [("1.2", "a\\qb"), ("1.1", "a\\rb"), ("1.2", "trailing\\")],
)
async def test_undefined_escape_is_a_protocol_error(
    gateway: Gateway, open_client: ClientFactory, version: str, value: str
) -> None:
    client = await open_client(gateway, version)
    await client.send_raw(
        frame_bytes("SUBSCRIBE", [("id", value), ("destination", "/sub/x"), ("receipt", "r")])
    )
    error = await client.expect_error_and_close()
    assert error.get("message") == "invalid header escape"


async def test_raw_colon_in_header_value_is_tolerated(
    gateway: Gateway, open_client: ClientFactory
) -> None:
    client = await open_client(gateway)
    await client.send_raw(
        frame_bytes("SUBSCRIBE", [("id", "a:b"), ("destination", "/sub/chat/1"), ("receipt", "r")])
    )
    await client.expect_receipt("r")
    await client.send_chat(1, chat_body())
    assert (await client.expect(Command.MESSAGE)).get("subscription") == "a:b"


# Bodies.


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


# Receipts.


async def test_receipts_for_every_command(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway)
    steps: list[tuple[str, list[tuple[str, str]], bytes]] = [
        ("SUBSCRIBE", [("id", "s"), ("destination", "/sub/chat/1")], b""),
        ("SEND", [("destination", "/pub/chat/1")], chat_body()),
        ("UNSUBSCRIBE", [("id", "s")], b""),
        ("BEGIN", [("transaction", "t1")], b""),
        ("SEND", [("destination", "/pub/chat/1"), ("transaction", "t1")], chat_body()),
        ("COMMIT", [("transaction", "t1")], b""),
        ("BEGIN", [("transaction", "t2")], b""),
        ("ABORT", [("transaction", "t2")], b""),
        ("SEND", [("destination", "/pub/ping")], b""),
    ]
    for index, (command, headers, body) in enumerate(steps):
        await client.send(command, [*headers, ("receipt", f"{command}-{index}")], body)
    received: list[Frame] = []
    messages = 0
    while len(received) < len(steps):
        frame = await client.read_frame()
        if frame.command is Command.MESSAGE:
            messages += 1
        else:
            received.append(frame)
    assert messages == 1  # the SEND before UNSUBSCRIBE
    assert {frame.command for frame in received} == {Command.RECEIPT}
    assert [frame.get("receipt-id") for frame in received] == [
        f"{command}-{index}" for index, (command, _, _) in enumerate(steps)
    ]
    await client.send("DISCONNECT", [("receipt", "bye")])
    frames, code = await client.read_until_closed()
    assert [(frame.command, frame.get("receipt-id")) for frame in frames] == [
        (Command.RECEIPT, "bye")
    ]
    assert code == 1000
    await eventually(lambda: not gateway.connections)


async def test_receipt_follows_the_effect(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/1")
    await client.send("SEND", [("destination", "/pub/chat/1"), ("receipt", "x")], chat_body())
    assert (await client.read_frame()).command is Command.MESSAGE
    await client.expect_receipt("x")


async def test_disconnect_without_receipt(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/1")
    await client.send("DISCONNECT")
    frames, code = await client.read_until_closed()
    assert frames == []
    assert code == 1000
    await eventually(lambda: len(gateway.registry) == 0)


# Transactions.


async def test_transaction_delivers_on_commit(gateway: Gateway, open_client: ClientFactory) -> None:
    subscriber = await open_client(gateway)
    await subscriber.subscribe("/sub/chat/1")
    sender = await open_client(gateway)
    await sender.send("BEGIN", [("transaction", "tx")])
    for text in ("held-1", "held-2"):
        await sender.send(
            "SEND", [("destination", "/pub/chat/1"), ("transaction", "tx")], chat_body(text)
        )
    await sender.send_chat(1, chat_body("direct"))
    assert chat_text(await subscriber.read_frame()) == "direct"
    assert await subscriber.barrier() == []
    await sender.send("COMMIT", [("transaction", "tx"), ("receipt", "c")])
    await sender.expect_receipt("c")
    assert [chat_text(await subscriber.read_frame()) for _ in range(2)] == ["held-1", "held-2"]
    assert await subscriber.barrier() == []


async def test_transaction_discarded_on_abort(gateway: Gateway, open_client: ClientFactory) -> None:
    subscriber = await open_client(gateway)
    await subscriber.subscribe("/sub/chat/1")
    sender = await open_client(gateway)
    await sender.send("BEGIN", [("transaction", "tx")])
    await sender.send(
        "SEND", [("destination", "/pub/chat/1"), ("transaction", "tx")], chat_body("aborted")
    )
    await sender.send("ABORT", [("transaction", "tx"), ("receipt", "a")])
    await sender.expect_receipt("a")
    await sender.send_chat(1, chat_body("after"))
    assert chat_text(await subscriber.read_frame()) == "after"
    assert await subscriber.barrier() == []
    # The transaction is gone: committing it now is a protocol error.
    await sender.send("COMMIT", [("transaction", "tx"), ("receipt", "late")])
    error = await sender.expect_error_and_close()
    assert error.get("message") == "unknown transaction"
    assert error.get("receipt-id") == "late"


@pytest.mark.parametrize("how", ["disconnect", "socket-close", "protocol-error"])
async def test_transaction_discarded_on_disconnect(
    gateway: Gateway, open_client: ClientFactory, how: str
) -> None:
    subscriber = await open_client(gateway)
    await subscriber.subscribe("/sub/chat/1")
    sender = await open_client(gateway)
    await sender.send("BEGIN", [("transaction", "tx")])
    await sender.send(
        "SEND", [("destination", "/pub/chat/1"), ("transaction", "tx")], chat_body("lost")
    )
    if how == "disconnect":
        await sender.send("DISCONNECT", [("receipt", "d")])
        await sender.expect_receipt("d")
    elif how == "socket-close":
        await sender.close()
    else:
        await sender.send_raw(b"BOGUS\n\n\0")
        await sender.expect_error_and_close()
    await eventually(lambda: len(gateway.connections) == 1)
    other = await open_client(gateway)
    await other.send_chat(1, chat_body("next"))
    assert chat_text(await subscriber.read_frame()) == "next"
    assert await subscriber.barrier() == []


async def test_send_in_unknown_transaction(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway)
    await client.send(
        "SEND",
        [("destination", "/pub/chat/1"), ("transaction", "nope"), ("receipt", "r")],
        chat_body(),
    )
    error = await client.expect_error_and_close()
    assert error.get("message") == "unknown transaction"
    assert error.get("receipt-id") == "r"


async def test_commit_is_not_partially_applied(
    gateway: Gateway, open_client: ClientFactory
) -> None:
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/1", "room")
    await client.subscribe(ERRORS, "errors")
    await client.send("BEGIN", [("transaction", "tx")])
    for body in (chat_body("first"), b"{not json", chat_body("third")):
        await client.send("SEND", [("destination", "/pub/chat/1"), ("transaction", "tx")], body)
    await client.send("COMMIT", [("transaction", "tx"), ("receipt", "c")])
    frames = await client.barrier()
    delivered = [chat_text(f) for f in frames if f.get("destination") == "/sub/chat/1"]
    # All or nothing, or every valid SEND on its own; not the first only.
    assert delivered in ([], ["first", "third"])


# Acknowledgements.


async def receive_acked(
    gateway: Gateway, open_client: ClientFactory, mode: str, count: int, version: str = "1.2"
) -> tuple[StompTestClient, list[Frame]]:
    client = await open_client(gateway, version)
    await client.subscribe("/sub/chat/1", "s", ack=mode)
    for n in range(count):
        await client.send_chat(1, chat_body(str(n)))
    messages = [await client.expect(Command.MESSAGE) for _ in range(count)]
    return client, messages


async def test_auto_mode_has_no_ack_header(gateway: Gateway, open_client: ClientFactory) -> None:
    _, messages = await receive_acked(gateway, open_client, "auto", 1)
    assert "ack" not in messages[0]


async def test_client_individual_ack(gateway: Gateway, open_client: ClientFactory) -> None:
    client, messages = await receive_acked(gateway, open_client, "client-individual", 3)
    acks = [message.get("ack", "") for message in messages]
    assert all(acks)
    assert len(set(acks)) == 3
    await client.send("ACK", [("id", acks[1]), ("receipt", "a1")])
    await client.expect_receipt("a1")
    await client.send("NACK", [("id", acks[0]), ("receipt", "n0")])
    await client.expect_receipt("n0")
    await client.send("ACK", [("id", acks[2]), ("receipt", "a2")])
    await client.expect_receipt("a2")
    await client.send("ACK", [("id", acks[1]), ("receipt", "again")])
    error = await client.expect_error_and_close()
    assert error.get("message") == "unknown ack id"
    assert error.get("receipt-id") == "again"


async def test_client_ack_is_cumulative(gateway: Gateway, open_client: ClientFactory) -> None:
    client, messages = await receive_acked(gateway, open_client, "client", 4)
    acks = [message.get("ack", "") for message in messages]
    await client.send("ACK", [("id", acks[2]), ("receipt", "a2")])
    await client.expect_receipt("a2")
    await client.send("ACK", [("id", acks[3]), ("receipt", "a3")])
    await client.expect_receipt("a3")
    # acks[0] and acks[1] went with acks[2].
    await client.send("ACK", [("id", acks[0])])
    error = await client.expect_error_and_close()
    assert error.get("message") == "unknown ack id"


async def test_client_individual_ack_is_not_cumulative(
    gateway: Gateway, open_client: ClientFactory
) -> None:
    client, messages = await receive_acked(gateway, open_client, "client-individual", 3)
    acks = [message.get("ack", "") for message in messages]
    for ack in (acks[2], acks[0], acks[1]):
        await client.send("ACK", [("id", ack), ("receipt", ack)])
        await client.expect_receipt(ack)


async def test_ack_in_1_1_names_subscription_and_message_id(
    gateway: Gateway, open_client: ClientFactory
) -> None:
    client, messages = await receive_acked(gateway, open_client, "client-individual", 2, "1.1")
    assert all("ack" not in message for message in messages)
    ids = [message.get("message-id", "") for message in messages]
    await client.send("NACK", [("subscription", "s"), ("message-id", ids[1]), ("receipt", "n")])
    await client.expect_receipt("n")
    await client.send("ACK", [("subscription", "s"), ("message-id", ids[0]), ("receipt", "a")])
    await client.expect_receipt("a")
    await client.send("ACK", [("subscription", "s"), ("message-id", ids[0])])
    assert (await client.expect_error_and_close()).get("message") == "unknown ack id"


async def test_ack_in_1_0_names_the_message_id(
    gateway: Gateway, open_client: ClientFactory
) -> None:
    client, messages = await receive_acked(gateway, open_client, "client", 2, "1.0")
    await client.send("ACK", [("message-id", messages[1].get("message-id", "")), ("receipt", "a")])
    await client.expect_receipt("a")
    await client.send("ACK", [("message-id", messages[0].get("message-id", ""))])
    assert (await client.expect_error_and_close()).get("message") == "unknown ack id"


async def test_ack_of_unknown_id(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/1", "s", ack="client")
    await client.send("ACK", [("id", "12345"), ("receipt", "r")])
    error = await client.expect_error_and_close()
    assert error.get("message") == "unknown ack id"
    assert error.get("receipt-id") == "r"
    await eventually(lambda: len(gateway.registry) == 0)


async def test_ack_in_transaction(gateway: Gateway, open_client: ClientFactory) -> None:
    client, messages = await receive_acked(gateway, open_client, "client-individual", 1)
    ack = messages[0].get("ack", "")
    await client.send("BEGIN", [("transaction", "t")])
    await client.send("ACK", [("id", ack), ("transaction", "t")])
    await client.send("ABORT", [("transaction", "t"), ("receipt", "abort")])
    await client.expect_receipt("abort")
    # The ACK was dropped with the transaction: the message is still pending.
    await client.send("BEGIN", [("transaction", "u")])
    await client.send("ACK", [("id", ack), ("transaction", "u")])
    await client.send("COMMIT", [("transaction", "u"), ("receipt", "commit")])
    await client.expect_receipt("commit")
    await client.send("ACK", [("id", ack)])
    assert (await client.expect_error_and_close()).get("message") == "unknown ack id"


async def test_unsubscribe_forgets_pending_acks(
    gateway: Gateway, open_client: ClientFactory
) -> None:
    client, messages = await receive_acked(gateway, open_client, "client", 1)
    await client.unsubscribe("s")
    await client.send("ACK", [("id", messages[0].get("ack", ""))])
    assert (await client.expect_error_and_close()).get("message") == "unknown ack id"


async def test_too_many_pending_acks(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    gateway = await make_gateway(max_pending_acks=2)
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/1", "s", ack="client-individual")
    for n in range(3):
        await client.send("SEND", [("destination", "/pub/chat/1")], chat_body(str(n)))
    frames, code = await client.read_until_closed()
    assert [frame.command for frame in frames] == [Command.MESSAGE] * 2 + [Command.ERROR]
    assert frames[-1].get("message") == "too many unacknowledged messages"
    assert code == 1002


async def test_two_acking_subscriptions_in_1_0(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    gateway = await make_gateway(duplicate_subscriptions="allow")
    client = await open_client(gateway, "1.0")
    await client.subscribe("/sub/chat/1", "s1", ack="client")
    await client.subscribe("/sub/chat/1", "s2", ack="client")
    await client.send_chat(1, chat_body())
    assert len([await client.expect(Command.MESSAGE) for _ in range(2)]) == 2
    await client.unsubscribe("s1")
    await client.unsubscribe("s2")
    assert len(gateway.registry) == 0


# Subscriptions.


async def test_duplicate_subscription_replace(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/1", "old")
    await client.subscribe("/sub/chat/1", "new")
    assert len(gateway.registry) == 1
    await client.send_chat(1, chat_body())
    assert (await client.expect(Command.MESSAGE)).get("subscription") == "new"
    assert await client.barrier() == []
    # Unsubscribing the replaced id is a quiet no-op: the client that
    # subscribed twice (a re-render) tidies up its first subscription.
    await client.unsubscribe("old")
    assert len(gateway.registry) == 1
    await client.send_chat(1, chat_body())
    assert (await client.expect(Command.MESSAGE)).get("subscription") == "new"
    assert await client.barrier() == []


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
async def test_unsubscribe_of_an_id_never_live_keeps_the_session(
    gateway: Gateway, open_client: ClientFactory, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway.transport.connection")
    client = await open_client(gateway, version)
    await client.subscribe("/sub/chat/1", "room")
    await client.unsubscribe("stale")
    await client.send("UNSUBSCRIBE", [("id", "stale")])  # no receipt asked: nothing comes
    await client.send_chat(1, chat_body())
    assert (await client.expect(Command.MESSAGE)).get("subscription") == "room"
    assert await client.barrier() == []
    assert "unsubscribed unknown id 'stale'" in caplog.text


async def test_duplicate_subscription_allow(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    gateway = await make_gateway(duplicate_subscriptions="allow")
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/1", "a")
    await client.subscribe("/sub/chat/1", "b")
    assert len(gateway.registry) == 2
    await client.send_chat(1, chat_body())
    copies = [await client.expect(Command.MESSAGE) for _ in range(2)]
    assert [copy.get("subscription") for copy in copies] == ["a", "b"]
    assert copies[0].body == copies[1].body
    assert await client.barrier() == []


async def test_duplicate_subscription_reject(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    gateway = await make_gateway(duplicate_subscriptions="reject")
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/1", "a")
    await client.send("SUBSCRIBE", [("id", "b"), ("destination", "/sub/chat/1"), ("receipt", "r")])
    error = await client.expect_error_and_close()
    assert error.get("message") == "duplicate subscription"
    assert error.get("receipt-id") == "r"
    await eventually(lambda: len(gateway.registry) == 0)


async def test_reusing_a_live_subscription_id(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/1", "s")
    await client.unsubscribe("s")
    await client.subscribe("/sub/chat/2", "s")  # free again after UNSUBSCRIBE
    await client.send("SUBSCRIBE", [("id", "s"), ("destination", "/sub/chat/3"), ("receipt", "r")])
    error = await client.expect_error_and_close()
    assert error.get("message") == "duplicate subscription id"
    assert error.get("receipt-id") == "r"


async def test_unsubscribe_stops_delivery(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/1", "s")
    await client.unsubscribe("s")
    assert len(gateway.registry) == 0
    await client.send_chat(1, chat_body())
    assert await client.barrier() == []


async def test_subscription_ids_in_1_0_default_to_the_destination(
    gateway: Gateway, open_client: ClientFactory
) -> None:
    client = await open_client(gateway, "1.0")
    await client.send("SUBSCRIBE", [("destination", "/sub/chat/1"), ("receipt", "s")])
    await client.expect_receipt("s")
    await client.send_chat(1, chat_body())
    assert (await client.expect(Command.MESSAGE)).get("subscription") == "/sub/chat/1"
    await client.send("UNSUBSCRIBE", [("destination", "/sub/chat/1"), ("receipt", "u")])
    await client.expect_receipt("u")
    assert len(gateway.registry) == 0


# Protocol errors: ERROR, then the WebSocket closes.

PROTOCOL_ERRORS: list[tuple[str, bool, bytes, str, str | None]] = [
    # (id, connect first, bytes, ERROR message, receipt-id)
    ("unknown-command", True, b"FOO\nreceipt:r\n\n\0", "unknown command", None),
    ("lowercase-command", True, b"send\ndestination:/pub/ping\n\n\0", "unknown command", None),
    (
        "send-before-connect",
        False,
        frame_bytes("SEND", [("destination", "/pub/ping"), ("receipt", "r")]),
        "not connected",
        "r",
    ),
    (
        "subscribe-before-connect",
        False,
        frame_bytes("SUBSCRIBE", [("id", "1"), ("destination", "/sub/x")]),
        "not connected",
        None,
    ),
    (
        "second-connect",
        True,
        frame_bytes("CONNECT", [("accept-version", "1.2"), ("receipt", "again")]),
        "already connected",
        "again",
    ),
    (
        "second-stomp",
        True,
        frame_bytes("STOMP", [("accept-version", "1.2")]),
        "already connected",
        None,
    ),
    (
        "missing-destination",
        True,
        frame_bytes("SEND", [("receipt", "r")], b"{}"),
        "missing header",
        "r",
    ),
    (
        "subscribe-missing-id",
        True,
        frame_bytes("SUBSCRIBE", [("destination", "/sub/x"), ("receipt", "r")]),
        "missing header",
        "r",
    ),
    (
        "invalid-ack-mode",
        True,
        frame_bytes("SUBSCRIBE", [("id", "1"), ("destination", "/sub/x"), ("ack", "sometimes")]),
        "invalid ack mode",
        None,
    ),
    ("server-frame", True, frame_bytes("MESSAGE", [("receipt", "m")]), "unexpected frame", "m"),
    ("malformed-header", True, b"SEND\nno colon here\n\n\0", "malformed header", None),
    (
        "invalid-content-length",
        True,
        b"SEND\ndestination:/pub/ping\ncontent-length:abc\n\n\0",
        "invalid content-length",
        None,
    ),
    (
        "missing-nul-after-content-length",
        True,
        b"SEND\ndestination:/pub/ping\ncontent-length:2\n\nabc\0",
        "missing NUL",
        None,
    ),
    (
        "begin-twice",
        True,
        b"BEGIN\ntransaction:t\n\n\0BEGIN\ntransaction:t\n\n\0",
        "transaction already begun",
        None,
    ),
    (
        "unknown-commit",
        True,
        frame_bytes("COMMIT", [("transaction", "t")]),
        "unknown transaction",
        None,
    ),
    ("invalid-utf8-header", True, b"SEND\ndestination:/pub/\xff\n\n\0", "invalid UTF-8", None),
]


@pytest.mark.parametrize(
    ("data", "message", "receipt_id", "connect"),
    [(case[2], case[3], case[4], case[1]) for case in PROTOCOL_ERRORS],
    ids=[case[0] for case in PROTOCOL_ERRORS],
)
async def test_protocol_error(
    gateway: Gateway,
    open_client: ClientFactory,
    data: bytes,
    message: str,
    receipt_id: str | None,
    connect: bool,
) -> None:
    client = await open_client(gateway, connect=connect)
    await client.send_raw(data)
    error = await client.expect_error_and_close()
    assert error.get("message") == message
    assert error.get("receipt-id") == receipt_id
    assert error.get("content-type") == "text/plain"
    assert error.body  # the details
    await eventually(lambda: not gateway.connections)


async def test_nack_does_not_exist_in_1_0(gateway: Gateway, open_client: ClientFactory) -> None:
    client = await open_client(gateway, "1.0")
    await client.send("NACK", [("message-id", "x")])
    assert (await client.expect_error_and_close()).get("message") == "unexpected frame"


@pytest.mark.parametrize("content_length", [False, True])
async def test_frame_over_max_frame_size(
    make_gateway: GatewayFactory, open_client: ClientFactory, content_length: bool
) -> None:
    gateway = await make_gateway(max_frame_size=1024)
    client = await open_client(gateway)
    await client.subscribe("/sub/chat/1")
    body = chat_body("x" * 2000)
    headers = [("destination", "/pub/chat/1"), ("receipt", "big")]
    if content_length:
        headers.append(("content-length", str(len(body))))
        # Refused as soon as the headers are read, before the body arrives.
        await client.send_raw(frame_bytes("SEND", headers)[:-1])
    else:
        await client.send_raw(frame_bytes("SEND", headers, body))
    error = await client.expect_error_and_close()
    assert error.get("message") == "frame too large"
    await eventually(lambda: len(gateway.registry) == 0)


async def test_frame_at_max_frame_size_is_accepted(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    gateway = await make_gateway(max_frame_size=1024)
    client = await open_client(gateway)
    await client.subscribe("/sub/pong")
    head = frame_bytes("SEND", [("destination", "/pub/ping")])[:-1]
    await client.send_raw(head + b" " * (1024 - len(head) - 1) + b"\0")
    assert (await client.expect(Command.MESSAGE)).body == b"pong"


@pytest.mark.parametrize(
    ("config", "data", "message"),
    [
        (
            {"max_headers": 3},
            frame_bytes("SEND", [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]),
            "too many headers",
        ),
        (
            {"max_header_line": 100},
            frame_bytes("SEND", [("destination", "/" + "x" * 200)]),
            "header line too long",
        ),
    ],
    ids=["headers", "header-line"],
)
async def test_header_limits(
    make_gateway: GatewayFactory,
    open_client: ClientFactory,
    config: dict[str, Any],
    data: bytes,
    message: str,
) -> None:
    gateway = await make_gateway(**config)
    client = await open_client(gateway)
    await client.send_raw(data)
    assert (await client.expect_error_and_close()).get("message") == message


async def test_frames_before_the_bad_one_take_effect(
    gateway: Gateway, open_client: ClientFactory
) -> None:
    client = await open_client(gateway)
    await client.send_raw(
        frame_bytes("SUBSCRIBE", [("id", "s"), ("destination", "/sub/pong"), ("receipt", "ok")])
        + frame_bytes("SEND", [("destination", "/pub/ping")])
        + b"NOPE\n\n\0"
        + frame_bytes("SEND", [("destination", "/pub/ping")])
    )
    frames, code = await client.read_until_closed()
    assert [frame.command for frame in frames] == [
        Command.RECEIPT,
        Command.MESSAGE,
        Command.ERROR,
    ]
    assert code == 1002


async def test_unencodable_subscription_id_in_1_0(
    gateway: Gateway, open_client: ClientFactory
) -> None:
    client = await open_client(gateway, "1.0")
    await client.send_raw(b"SUBSCRIBE\nid:a\rb\ndestination:/sub/chat/1\nreceipt:r\n\n\0")
    # An answer: ERROR (the id cannot be echoed in 1.0) or RECEIPT; not a bare close.
    frames: list[Frame] = []
    with contextlib.suppress(Closed):
        frames.append(await client.read_frame())
    assert [frame.command for frame in frames] in ([Command.ERROR], [Command.RECEIPT])


async def test_relay_to_1_0_subscriber_of_unencodable_header(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    """STOMP 1.0 cannot carry a newline in a header: that subscriber is skipped
    with a warning, the sender and every other subscriber are unaffected."""
    gateway = await make_gateway(allow_broker_send=True)
    old = await open_client(gateway, "1.0")
    await old.subscribe("/sub/x", "s")
    new = await open_client(gateway, "1.2")
    await new.subscribe("/sub/x", "s")
    sender = await open_client(gateway, "1.2")
    await sender.send_raw(
        frame_bytes("SEND", [("destination", "/sub/x"), ("note", "a\\nb"), ("receipt", "r")], b"hi")
    )
    await sender.expect_receipt("r")
    message = await new.expect(Command.MESSAGE)
    assert (message.body, message.get("note")) == (b"hi", "a\nb")
    assert await old.barrier() == []
    assert len(gateway.registry) == 2  # nobody was disconnected


FORGED = "ERROR\nmessage:server shutting down"


@pytest.mark.parametrize(
    "frame",
    [
        frame_bytes("SEND", [("destination", "/sub/x"), ("x", f"1\0{FORGED}")], b"hi"),
        frame_bytes("SEND", [("destination", "/sub/x"), ("receipt", f"r\0{FORGED}")]),
        frame_bytes("SUBSCRIBE", [("destination", "/sub/y"), ("id", f"s\0{FORGED}")]),
    ],
    ids=["relayed-header", "receipt", "subscription-id"],
)
@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
async def test_a_nul_in_a_header_forges_no_frame(
    make_gateway: GatewayFactory, open_client: ClientFactory, frame: bytes, version: str
) -> None:
    gateway = await make_gateway(allow_broker_send=True)
    subscribers = [await open_client(gateway, v) for v in ("1.0", "1.1", "1.2")]
    for subscriber in subscribers:
        await subscriber.subscribe("/sub/x", "s")
    sender = await open_client(gateway, version)
    await sender.subscribe("/sub/x", "s")
    await sender.send_raw(frame)
    error = await sender.expect_error_and_close()
    assert error.get("message") == "malformed header"
    assert "NUL" in error.body.decode()
    for subscriber in subscribers:
        assert await subscriber.barrier() == []  # no MESSAGE, no forged ERROR
    assert len(gateway.registry) == 3


async def test_a_record_whose_id_holds_a_nul_is_skipped(
    gateway: Gateway, open_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Another producer's record on the bus: its id would be the message-id header."""
    caplog.set_level(logging.WARNING, logger="gateway.chat.service")
    subscriber = await open_client(gateway)
    await subscriber.subscribe("/sub/chat/4", "room")
    record = json.loads(chat_body())
    record.update(id=f"1\0{FORGED}", chatRoomId=4, createAt="2024-01-01T00:00:00")
    await gateway.bus.publish("4", json.dumps(record).encode())
    await subscriber.send_chat(4, chat_body())
    message = await subscriber.expect(Command.MESSAGE)
    assert json.loads(message.body)["id"] == message.get("message-id")
    assert await subscriber.barrier() == []
    assert "skipping record" in caplog.text
    assert "id is not an ObjectId" in caplog.text


# Application errors: the connection stays open.

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


# Timers.


async def test_connect_timeout(make_gateway: GatewayFactory, open_client: ClientFactory) -> None:
    gateway = await make_gateway(connect_timeout=0.5)
    started = time.monotonic()
    silent = await open_client(gateway, connect=False)
    punctual = await open_client(gateway)
    error = await silent.expect_error_and_close()
    assert error.get("message") == "connect timeout"
    assert time.monotonic() - started >= 0.4
    assert await punctual.barrier() == []  # CONNECT in time cancels the timer


async def test_silent_client_is_dropped(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    gateway = await make_gateway(heartbeat_interval=500, heartbeat_tolerance=1.5)
    started = time.monotonic()
    # Receive interval max(cx, sy): 500 ms, so a timeout after 750 ms...
    silent = await open_client(gateway, heart_beat="500,0")
    await silent.subscribe("/sub/chat/1", "silent")
    # ...but 1000 ms when the client promises beats only every second.
    slower = await open_client(gateway, heart_beat="1000,0")
    beating = await open_client(gateway, heart_beat="500,0")
    await beating.subscribe("/sub/chat/1", "beating")

    async def beat() -> None:
        while True:
            await asyncio.sleep(0.1)
            await beating.send_raw(b"\n")

    beater = asyncio.create_task(beat())
    try:
        frames, code = await silent.read_until_closed()
        dropped = time.monotonic() - started
        assert frames == []
        assert code == 1008
        assert 0.6 <= dropped < 1.4
        await eventually(lambda: len(gateway.registry) == 1)
        frames, code = await slower.read_until_closed()
        assert frames == []
        assert code == 1008
        assert time.monotonic() - started >= 1.4
        assert await beating.barrier() == []
    finally:
        beater.cancel()
    assert [sub.id for sub in gateway.registry.subscribers("/sub/chat/1")] == ["beating"]


async def test_server_heart_beats(make_gateway: GatewayFactory, open_client: ClientFactory) -> None:
    gateway = await make_gateway(heartbeat_floor=100)
    quiet = await open_client(gateway, heart_beat="0,0")
    client = await open_client(gateway, connect=False)
    connected = await client.connect("1.2", heart_beat="0,200")
    assert connected.get("heart-beat") == "200,10000"
    times = []
    for _ in range(4):
        event, is_text = await client.read_event(timeout=2)
        assert isinstance(event, HeartBeat)
        assert is_text
        assert client.received[-1] == "\n"
        times.append(time.monotonic())
    intervals = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(0.1 < interval < 0.6 for interval in intervals), intervals
    assert "\n" not in quiet.received
    assert await quiet.barrier() == []
    assert "\n" not in quiet.received


async def test_heart_beats_wait_for_idle(
    make_gateway: GatewayFactory, open_client: ClientFactory
) -> None:
    # Any frame sent counts as a beat: a busy connection gets no EOLs.
    gateway = await make_gateway(heartbeat_floor=100)
    client = await open_client(gateway, heart_beat="0,150")
    await client.subscribe("/sub/pong")
    started = time.monotonic()
    while time.monotonic() - started < 0.5:  # over three intervals
        await client.send("SEND", [("destination", "/pub/ping")])
        await client.expect(Command.MESSAGE)
        await asyncio.sleep(0.03)
    assert "\n" not in client.received
    # Idle again: the beats resume.
    event, _ = await client.read_event(timeout=1)
    assert isinstance(event, HeartBeat)


# Connection ends.


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
