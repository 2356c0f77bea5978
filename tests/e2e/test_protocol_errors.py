"""Protocol errors: ERROR, then the WebSocket closes."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import pytest

from gateway import Gateway
from protocol import Command, Frame
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import ClientFactory, Closed, chat_body, frame_bytes
from tests.support.waiting import eventually

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
