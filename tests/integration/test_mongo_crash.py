"""
A gateway killed with SIGKILL mid-stream loses no acknowledged message, and
stores none twice: its persister's consumer group resumes after a restart
from the last offsets it committed, and the message id makes replays harmless.
"""

from __future__ import annotations

import asyncio
import collections
import re
import signal
import time

import pytest
from pymongo import AsyncMongoClient
from websockets.exceptions import ConnectionClosed

from protocol import Command
from tests.support.servers import UNLIMITED_SENDS_ARGS, GatewaySpawner
from tests.support.stomp_client import Closed, StompTestClient, chat_body

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]

ROOM = 21
SEND_EVERY = 0.01  # seconds between SENDs
KILL_AFTER = 150  # SENDs before the SIGKILL


async def send_until_killed(client: StompTestClient, kill: asyncio.Event) -> tuple[int, set[int]]:
    """SEND numbered messages with receipts until the socket dies; return (sent, receipted)."""
    receipted: set[int] = set()
    sent = 0

    async def read_receipts() -> None:
        while True:
            frame = await client.read_frame(timeout=30)
            receipt = frame.get("receipt-id") if frame.command is Command.RECEIPT else None
            if receipt is not None:
                receipted.add(int(receipt))

    reader = asyncio.create_task(read_receipts())
    try:
        while not reader.done():
            await client.send(
                "SEND",
                [("destination", f"/pub/chat/{ROOM}"), ("receipt", str(sent))],
                chat_body(f"seq-{sent}"),
            )
            sent += 1
            if sent == KILL_AFTER:
                kill.set()
            await asyncio.sleep(SEND_EVERY)
    except (Closed, ConnectionClosed, OSError):
        pass  # the gateway was killed: sending ends here
    finally:
        await asyncio.wait({reader}, timeout=10)
        reader.cancel()
    return sent, receipted


async def stored_sequence(uri: str) -> list[int]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(uri)
    try:
        documents = client.get_default_database()["chat_messages"].find({"chat_room_id": ROOM})
        texts = [str(document["message"]) async for document in documents]
    finally:
        await client.close()
    return [int(match[1]) for text in texts if (match := re.fullmatch(r"seq-(\d+)", text))]


async def test_sigkill_loses_no_acknowledged_message(
    spawn_gateway: GatewaySpawner, kafka_bootstrap: str, kafka_topic: str, mongo_db_uri: str
) -> None:
    args = ("--kafka-bootstrap", kafka_bootstrap, "--kafka-topic", kafka_topic)
    args += ("--mongo-uri", mongo_db_uri, *UNLIMITED_SENDS_ARGS)  # 100 SENDs/s from one client
    first = await spawn_gateway(*args)
    client = await StompTestClient.open(first.port)
    await client.connect("1.2")
    kill = asyncio.Event()
    sending = asyncio.create_task(send_until_killed(client, kill))
    await kill.wait()
    first.process.send_signal(signal.SIGKILL)
    sent, receipted = await sending
    await client.close()
    assert first.process.wait() == -signal.SIGKILL

    await spawn_gateway(*args)  # its persister resumes the group's committed offsets
    deadline = time.monotonic() + 60
    stored = await stored_sequence(mongo_db_uri)
    while not receipted <= set(stored) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        stored = await stored_sequence(mongo_db_uri)
    copies = collections.Counter(stored)
    duplicates = sorted(seq for seq, count in copies.items() if count > 1)
    print(
        f"sent={sent} receipted={len(receipted)} stored={len(copies)} "
        f"duplicates={len(duplicates)} missing={len(receipted - set(copies))}"
    )
    assert len(receipted) >= KILL_AFTER // 2, "too few acknowledged messages to mean anything"
    assert receipted <= set(copies), (
        f"acknowledged but not stored: {sorted(receipted - set(copies))}"
    )
    assert duplicates == []
    assert set(copies) <= set(range(sent))
