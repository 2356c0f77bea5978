"""Header escaping per version (STOMP 1.2 "Value Encoding"; none in 1.0)."""

from __future__ import annotations

import pytest

from gateway import Gateway
from protocol import Command
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import ClientFactory, chat_body, frame_bytes


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
