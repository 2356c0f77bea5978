"""Receipts: one for every command that asks, after its effect."""

from __future__ import annotations

from gateway import Gateway
from protocol import Command, Frame
from tests.support.stomp_client import ClientFactory, chat_body
from tests.support.waiting import eventually


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
