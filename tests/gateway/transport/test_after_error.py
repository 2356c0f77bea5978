"""
Nothing follows an ERROR (STOMP 1.2 §ERROR: the server MUST then close), not
even the RECEIPT of a SEND whose bus acknowledgement arrives with it.
"""

from __future__ import annotations

import asyncio

from websockets.frames import CloseCode

from gateway.config import Config
from protocol import MessageTemplate
from tests.gateway.transport.fake_websocket import Harness


async def test_a_receipt_due_after_an_error_is_not_sent() -> None:
    harness = Harness(Config(max_pending_acks=1))
    await harness.connect()
    harness.client.send_frame("SUBSCRIBE", ("id", "s"), ("destination", "/a"), ("ack", "client"))
    acknowledged = asyncio.get_running_loop().create_future()
    harness.app.acks["1"] = acknowledged
    harness.client.send_frame("SEND", ("destination", "/a"), ("id", "1"), ("receipt", "r"))
    await harness.settle()
    [subscription] = harness.app.subscriptions
    message = MessageTemplate((("destination", "/a"), ("message-id", "m")), b"x")
    # The bus acknowledges the SEND as a second unacknowledged message
    # breaks the cap: the RECEIPT is due right after the ERROR.
    acknowledged.set_result(None)
    harness.connection.deliver(subscription, message)
    harness.connection.deliver(subscription, message)
    close = await harness.closed()
    assert harness.client.commands() == ["MESSAGE", "ERROR"]
    assert harness.client.frames[1].get("message") == "too many unacknowledged messages"
    assert close.code == CloseCode.PROTOCOL_ERROR
