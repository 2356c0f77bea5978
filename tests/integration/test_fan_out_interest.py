"""
``--fan-out-partitions interest`` against a real Kafka broker: an instance
reads only the partitions of rooms it has subscribers in, re-assigned as rooms
gain and lose them. Through those re-assignments, a subscription gets every
message of its room once and in order from its RECEIPT on, and nothing after
its UNSUBSCRIBE's RECEIPT; an instance restarted in this mode recovers the gap
from the store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from typing import Any

import pytest

from gateway import Gateway
from protocol import Command, Frame
from tests.support.servers import UNLIMITED_SENDS, GatewayFactory, create_kafka_topic
from tests.support.stomp_client import StompTestClient, chat_body, connected

pytestmark = [pytest.mark.kafka, pytest.mark.mongo, pytest.mark.timeout(180)]

WAIT = 15.0
PARTITIONS = 8
STEADY_ROOM = 1  # subscribed all along; rooms 9 (same partition) and others churn
CHURN_ROOMS = [2, 3, 4, 5, 9, 10, 11, 12, 13, 17]
ROOMS = [STEADY_ROOM, *CHURN_ROOMS]


@pytest.fixture
async def topic(kafka_bootstrap: str, kafka_topic: str) -> str:
    """This test's topic, with more partitions than rooms of the test share."""
    await create_kafka_topic(kafka_bootstrap, kafka_topic, PARTITIONS)
    return kafka_topic


@pytest.fixture
def options(kafka_bootstrap: str, topic: str, mongo_db_uri: str) -> dict[str, Any]:
    """
    Instances in interest mode on this test's topic, with MongoDB: the persister reads
    as a consumer group, so the fan-out alone reads by interest.
    """
    return {
        "kafka_bootstrap": kafka_bootstrap,
        "kafka_topic": topic,
        "kafka_partitions": PARTITIONS,
        "fan_out_partitions": "interest",
        "mongo_uri": mongo_db_uri,
        **UNLIMITED_SENDS,
    }


class Reader:
    """Reads every frame of a client in a task of its own; RECEIPTs resolve futures."""

    def __init__(self, client: StompTestClient) -> None:
        self.client = client
        self.events: list[Frame] = []
        self.receipts: dict[str, asyncio.Future[int]] = {}
        self.seqs: dict[str, list[int]] = {}  # subscription -> seqs received, in order
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            frame = await self.client.read_frame(timeout=60)
            assert frame.command is not Command.ERROR, frame
            self.events.append(frame)
            if frame.command is Command.RECEIPT:
                self.receipts[frame.get("receipt-id", "")].set_result(len(self.events))
            elif frame.command is Command.MESSAGE:
                text = json.loads(frame.body)["message"]
                room, seq = map(int, text.split(":"))
                assert frame.get("destination") == f"/sub/chat/{room}", frame
                self.seqs.setdefault(frame.get("subscription", ""), []).append(seq)

    async def request(self, command: str, headers: list[tuple[str, str]]) -> int:
        """Send a frame with a receipt; return the index of its RECEIPT among the events."""
        receipt = self.client.next_receipt()
        future = self.receipts[receipt] = asyncio.get_running_loop().create_future()
        await self.client.send(command, [*headers, ("receipt", receipt)])
        return await asyncio.wait_for(future, WAIT)

    async def wait_for(self, subscription: str, seq: int) -> None:
        deadline = time.monotonic() + WAIT
        while not self.seqs.get(subscription) or self.seqs[subscription][-1] < seq:
            assert time.monotonic() < deadline, (subscription, seq, self.seqs.get(subscription))
            await asyncio.sleep(0.005)


@dataclasses.dataclass
class Period:
    """One subscription of the churn: what it must and may have received."""

    id: str
    room: int
    first_due: int  # the first round sent after its SUBSCRIBE's RECEIPT
    last_due: int = 0  # the last round acknowledged before it was unsubscribed
    ended_at: int = 0  # index of the UNSUBSCRIBE's RECEIPT among the reader's events


class Publisher:
    """Sends round after round, one message per room, ``room:round`` as the text."""

    def __init__(self, client: StompTestClient) -> None:
        self.client = client
        self.sent = 0  # rounds whose SENDs are all written
        self.acked = 0  # rounds whose SENDs are all acknowledged

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            round_ = self.sent + 1
            for room in ROOMS:
                await self.client.send_chat(room, chat_body(f"{room}:{round_}"), receipt=False)
            self.sent = round_
            await self.client.barrier()  # RECEIPTs are in order: every SEND before is on the bus
            self.acked = round_
            await asyncio.sleep(0.01)


async def churn(
    reader: Reader, publisher: Publisher, name: str, periods: int, rng: random.Random
) -> list[Period]:
    done = []
    for number in range(periods):
        room = rng.choice(CHURN_ROOMS)
        period = Period(f"{name}-{number}", room, first_due=0)
        destination = f"/sub/chat/{room}"
        await reader.request("SUBSCRIBE", [("id", period.id), ("destination", destination)])
        period.first_due = publisher.sent + 1
        await asyncio.sleep(rng.uniform(0.02, 0.2))
        period.last_due = publisher.acked
        await reader.wait_for(period.id, period.last_due)
        period.ended_at = await reader.request("UNSUBSCRIBE", [("id", period.id)])
        done.append(period)
    return done


def check_period(reader: Reader, period: Period) -> None:
    seqs = reader.seqs.get(period.id, [])
    assert seqs, period
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"gap, duplicate or disorder: {period}"
    assert seqs[0] <= period.first_due, f"lost the start: {period} got {seqs[:3]}"
    assert seqs[-1] >= period.last_due, period
    late = [
        frame
        for frame in reader.events[period.ended_at :]
        if frame.command is Command.MESSAGE and frame.get("subscription") == period.id
    ]
    assert late == [], f"delivered after UNSUBSCRIBE's RECEIPT: {period}"


async def test_rooms_in_churn_lose_nothing_and_leak_nothing(
    make_gateway: GatewayFactory, options: dict[str, Any], clients: list[StompTestClient]
) -> None:
    a = await make_gateway(**options)
    b = await make_gateway(**options)
    assert b.bus.fan_out_counts().partitions == 0  # no subscriber: nothing fetched

    steady = Reader(await connected(b.port, clients))
    await steady.request(
        "SUBSCRIBE", [("id", "steady"), ("destination", f"/sub/chat/{STEADY_ROOM}")]
    )
    publisher = Publisher(await connected(a.port, clients))
    first_steady = publisher.sent + 1
    readers = [Reader(await connected(b.port, clients)) for _ in range(3)]
    stop = asyncio.Event()
    publishing = asyncio.create_task(publisher.run(stop))
    rng = random.Random(16)
    try:
        results = await asyncio.gather(
            *(churn(reader, publisher, f"c{n}", 12, rng) for n, reader in enumerate(readers))
        )
        stop.set()
        await publishing
        await steady.wait_for("steady", publisher.acked)
    finally:
        stop.set()
        publishing.cancel()
        for reader in [steady, *readers]:
            reader.task.cancel()
    for reader, periods in zip(readers, results, strict=True):
        assert set(reader.seqs) == {period.id for period in periods}
        for period in periods:
            check_period(reader, period)
    seqs = steady.seqs["steady"]
    assert seqs == list(range(first_steady, publisher.acked + 1)), "steady room: gap or disorder"
    counts = b.bus.fan_out_counts()
    assert counts.partitions == 1  # the steady room's partition, once the churn is over
    assert a.bus.fan_out_counts().fetched == 0  # no subscriber on A: nothing read there


async def test_restarted_instance_recovers_the_gap_from_the_store(
    make_gateway: GatewayFactory, options: dict[str, Any], clients: list[StompTestClient]
) -> None:
    a = await make_gateway(**options)
    b = Gateway(a.config)
    await b.start()
    room = 5
    sender = await connected(a.port, clients)
    reader = await connected(b.port, clients)
    await reader.subscribe(f"/sub/chat/{room}", "before")
    for n in range(20):
        await sender.send_chat(room, chat_body(f"m{n}"), receipt=False)
    await sender.barrier()
    seen = [await reader.expect(Command.MESSAGE, timeout=WAIT) for _ in range(20)]
    last_id = json.loads(seen[-1].body)["id"]
    await b.shutdown("restart")
    for n in range(20, 50):
        await sender.send_chat(room, chat_body(f"m{n}"), receipt=False)
    await sender.barrier()
    deadline = time.monotonic() + 30
    while len(await a.store.after(room, last_id, 100) or []) < 30:
        assert time.monotonic() < deadline, "the persister did not store the gap"
        await asyncio.sleep(0.05)

    restarted = Gateway(a.config)
    await restarted.start()
    try:
        again = await connected(restarted.port, clients)
        receipt = again.next_receipt()
        await again.send(
            "SUBSCRIBE",
            [
                ("id", "after"),
                ("destination", f"/sub/chat/{room}"),
                ("x-last-message-id", last_id),
                ("receipt", receipt),
            ],
        )
        frames: list[Frame] = []
        while not frames or frames[-1].command is not Command.RECEIPT:
            frames.append(await again.read_frame(WAIT))
        assert frames[-1].get("receipt-id") == receipt
        assert frames[-1].get("x-recovered") == "true"
        for n in range(50, 60):  # live, once the subscription is
            await sender.send_chat(room, chat_body(f"m{n}"), receipt=False)
        await sender.barrier()
        messages = frames[:-1]
        while len(messages) < 40:
            messages.append(await again.expect(Command.MESSAGE, timeout=WAIT))
        texts = [json.loads(frame.body)["message"] for frame in messages]
        assert texts == [f"m{n}" for n in range(20, 60)]
        assert [f for f in await again.barrier() if f.command is Command.MESSAGE] == []
    finally:
        await restarted.shutdown()
