"""Subscriptions: ids, the duplicate policy, UNSUBSCRIBE."""

from __future__ import annotations

import logging

import pytest

from gateway import Gateway
from protocol import Command
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import ClientFactory, chat_body
from tests.support.waiting import eventually


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
