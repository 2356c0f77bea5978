"""
RECEIPTs leave in the frames' order through a whole gateway, also when a
frame with nothing to await follows one still awaiting the bus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from gateway.app import Gateway
from gateway.config import Config
from kafka_bridge import InMemoryBus
from protocol import Command
from tests.support.stomp_client import StompTestClient, chat_body


class HeldBus(InMemoryBus):
    """Takes each record at once, and acknowledges it when the test says (as Kafka may)."""

    def __init__(self) -> None:
        super().__init__()
        self.acks: list[asyncio.Future[None]] = []

    async def publish(self, key: str, value: bytes) -> Awaitable[None]:  # type: ignore[override]
        await super().publish(key, value)
        self.acks.append(asyncio.get_running_loop().create_future())
        return self.acks[-1]


async def test_a_receipt_waits_for_an_earlier_frame_still_awaiting_the_bus() -> None:
    bus = HeldBus()
    gateway = Gateway(Config(port=0), bus=bus)
    await gateway.start()
    try:
        async with await StompTestClient.open(gateway.port) as client:
            await client.connect("1.2")
            send = [("destination", "/pub/chat/1"), ("receipt", "sent")]
            await client.send("SEND", send, chat_body())
            while not bus.acks:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # the gateway is awaiting the acknowledgement
            await client.send("UNSUBSCRIBE", [("id", "none"), ("receipt", "unsubscribed")])
            await asyncio.sleep(0.05)  # the UNSUBSCRIBE is done
            bus.acks[0].set_result(None)
            receipts = [await client.expect(Command.RECEIPT) for _ in range(2)]
            assert [frame.get("receipt-id") for frame in receipts] == ["sent", "unsubscribed"]
    finally:
        await gateway.shutdown()
