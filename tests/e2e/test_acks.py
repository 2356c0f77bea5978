"""Acknowledgements: ack modes, ACK and NACK per version, the pending cap."""

from __future__ import annotations

from gateway import Gateway
from protocol import Command, Frame
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import ClientFactory, StompTestClient, chat_body
from tests.support.waiting import eventually


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
