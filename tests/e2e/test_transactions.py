"""Transactions: BEGIN, COMMIT, ABORT, and what a disconnect discards."""

from __future__ import annotations

import pytest

from gateway import Gateway
from tests.support.stomp_client import ERRORS, ClientFactory, chat_body, chat_text
from tests.support.waiting import eventually


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
