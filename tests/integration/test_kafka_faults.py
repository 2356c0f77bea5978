"""
The Kafka broker goes away and comes back while a client sends steadily
through gateway A to a subscriber on gateway B.

The test stops and restarts the broker, so it runs its own one, from
``scripts/kafka-local`` with a state directory of its own (``KAFKA_LOCAL_DIR``
under the test's tmp dir): the session's broker may be shared with other test
runs, which must not see it vanish. With ``$KAFKA_BOOTSTRAP`` set (a broker this
test cannot control) it is skipped.

What a client may rely on: a message that got its RECEIPT is delivered exactly
once and in order; a message without a RECEIPT was delivered or reported on
``/user/queue/errors``; nothing twice; the connections survive; ``/readyz``
says 503 while the broker is away.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from protocol import Command
from tests.support.servers import (
    REPO_ROOT,
    UNLIMITED_SENDS_ARGS,
    GatewayProcess,
    GatewaySpawner,
    create_kafka_topic,
    kafka_local,
    parse_kafka_bootstrap,
)
from tests.support.stomp_client import Closed, StompTestClient, chat_body

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

SEND_INTERVAL = 0.015  # seconds between SENDs
STEADY_BEFORE = 3.0  # seconds of sending before the broker stops
OUTAGE = 5.0  # seconds the broker stays stopped
STEADY_AFTER = 5.0  # seconds of sending after the broker is back
SETTLE_TIMEOUT = 30.0  # seconds for receipts, errors and deliveries to settle
SEND_TIMEOUT = "3"  # --kafka-send-timeout
ERRORS = "/user/queue/errors"
DIRECT_BASE = 1_000_000  # sequence numbers of records produced straight into the topic
DIRECT_COUNT = 5
RECOVERY_GRACE = 2.0  # seconds after the broker is back from which every SEND must succeed


class NotRecovered(AssertionError):
    """Chat SENDs still fail after the broker is back (the known bug below)."""


@dataclasses.dataclass
class PrivateBroker:
    """A broker from scripts/kafka-local in a state directory of its own."""

    env: dict[str, str]
    bootstrap: str

    @property
    def port(self) -> int:
        return int(self.bootstrap.rsplit(":", 1)[1])

    async def stop(self) -> None:
        await asyncio.to_thread(kafka_local, "stop", "--keep-data", env=self.env)

    async def start(self) -> None:
        result = await asyncio.to_thread(
            kafka_local, "start", "--port", str(self.port), env=self.env
        )
        assert parse_kafka_bootstrap(result.stdout) == self.bootstrap


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[PrivateBroker]:
    if os.environ.get("KAFKA_BOOTSTRAP"):
        pytest.skip(
            "KAFKA_BOOTSTRAP is set: this test must stop and restart the broker, "
            "so it needs one of its own from scripts/kafka-local"
        )
    state = tmp_path / "kafka-local"
    state.mkdir()
    # Reuse the jars already fetched for the shared broker (read only).
    shared = Path(os.environ.get("KAFKA_LOCAL_DIR") or REPO_ROOT / ".local" / "kafka")
    for lib in shared.glob("lib-*"):
        if (lib / ".complete").is_file():
            (state / lib.name).symlink_to(lib.resolve(), target_is_directory=True)
    env = {**os.environ, "KAFKA_LOCAL_DIR": str(state)}
    result = kafka_local("start", env=env)
    try:
        yield PrivateBroker(env, parse_kafka_bootstrap(result.stdout))
    finally:
        kafka_local("stop", env=env)


@dataclasses.dataclass
class Tally:
    """What the clients saw, by sequence number."""

    sent: list[int] = dataclasses.field(default_factory=list)
    sent_at: list[float] = dataclasses.field(default_factory=list)  # seconds since start
    receipted: list[int] = dataclasses.field(default_factory=list)
    failed: dict[int, str] = dataclasses.field(default_factory=dict)
    delivered: list[int] = dataclasses.field(default_factory=list)
    offsets: list[int] = dataclasses.field(default_factory=list)
    direct: list[int] = dataclasses.field(default_factory=list)  # produced around the gateways
    unexpected: list[str] = dataclasses.field(default_factory=list)

    def answered(self) -> int:
        return len(set(self.receipted) | set(self.failed))

    def summary(self) -> dict[str, int]:
        delivered = set(self.delivered)
        return {
            "sent": len(self.sent),
            "receipted": len(self.receipted),
            "failed": len(self.failed),
            "delivered": len(self.delivered),
            "duplicates": len(self.delivered) - len(delivered),
            "failed_but_delivered": len(set(self.failed) & delivered),
            "unanswered": len(self.sent) - self.answered(),
            "lost": len(set(self.sent) - delivered - set(self.failed)),
            "direct_delivered": len(self.direct),
        }


def seq_of(text: str) -> int:
    assert text.startswith("seq="), text
    return int(text.removeprefix("seq="))


async def read_sender(client: StompTestClient, tally: Tally) -> None:
    while True:
        frame = await client.read_frame(timeout=3600)
        if frame.command is Command.RECEIPT:
            tally.receipted.append(seq_of(frame.get("receipt-id", "")))
        elif frame.command is Command.MESSAGE and frame.get("destination") == ERRORS:
            tally.failed[seq_of(frame.get("receipt-id", ""))] = frame.get("message", "")
        else:
            tally.unexpected.append(f"A: {frame}")


async def read_subscriber(client: StompTestClient, tally: Tally) -> None:
    while True:
        frame = await client.read_frame(timeout=3600)
        if frame.command is Command.MESSAGE and frame.get("destination") == "/sub/chat/4":
            seq = seq_of(json.loads(frame.body)["message"])
            if seq >= DIRECT_BASE:
                tally.direct.append(seq)
                continue
            tally.delivered.append(seq)
            tally.offsets.append(int(frame.get("x-offset", "-1")))
        else:
            tally.unexpected.append(f"B: {frame}")


async def send_steadily(
    client: StompTestClient, tally: Tally, stop: asyncio.Event, start: float
) -> None:
    """SEND with receipts every SEND_INTERVAL, never waiting for the receipts."""
    seq = 0
    next_at = time.monotonic()
    while not stop.is_set():
        headers = [
            ("destination", "/pub/chat/4"),
            ("content-type", "application/json"),
            ("receipt", f"seq={seq}"),
        ]
        await client.send("SEND", headers, chat_body(f"seq={seq}"))
        tally.sent.append(seq)
        tally.sent_at.append(time.monotonic() - start)
        seq += 1
        next_at += SEND_INTERVAL
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@contextlib.asynccontextmanager
async def running(*tasks: asyncio.Task[None]) -> AsyncIterator[None]:
    """Cancel ``tasks`` on the way out."""
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_broker_restart_during_steady_sending(
    private_kafka: PrivateBroker,
    spawn_gateway: GatewaySpawner,
    kafka_topic: str,
    record_property: Callable[[str, object], None],
) -> None:
    broker = private_kafka
    args = (
        "--kafka-bootstrap",
        broker.bootstrap,
        "--kafka-topic",
        kafka_topic,
        "--kafka-send-timeout",
        SEND_TIMEOUT,
        *UNLIMITED_SENDS_ARGS,  # one sender streams faster than a person
    )
    await create_kafka_topic(broker.bootstrap, kafka_topic)  # see test_kafka_bus: a race
    a, b = await asyncio.gather(spawn_gateway(*args), spawn_gateway(*args))
    sender = await StompTestClient.open(a.port)
    subscriber = await StompTestClient.open(b.port)
    await sender.connect("1.2")
    await subscriber.connect("1.2")
    await sender.subscribe(ERRORS, "errors")
    await subscriber.subscribe("/sub/chat/4", "room-4")

    tally = Tally()
    stop_sending = asyncio.Event()
    start = time.monotonic()
    sending = asyncio.create_task(send_steadily(sender, tally, stop_sending, start))
    readers = [
        asyncio.create_task(read_sender(sender, tally)),
        asyncio.create_task(read_subscriber(subscriber, tally)),
    ]
    timeline: dict[str, float] = {}

    def mark(event: str) -> None:
        timeline[event] = round(time.monotonic() - start, 2)

    async with running(sending, *readers):
        await asyncio.sleep(STEADY_BEFORE)
        mark("broker_stopping")
        await broker.stop()
        mark("broker_stopped")
        outage_readyz = await a.get("/readyz", timeout=10)
        mark("readyz_checked")
        await asyncio.sleep(
            max(0.0, OUTAGE - (time.monotonic() - start - timeline["broker_stopped"]))
        )
        mark("broker_starting")
        await broker.start()
        mark("broker_started")
        await asyncio.sleep(STEADY_AFTER)
        stop_sending.set()
        await sending
        mark("sending_stopped")
        answered = await until(lambda: tally.answered() >= len(tally.sent), SETTLE_TIMEOUT)
        mark("answered" if answered else "answers_timed_out")
        # Deliveries settle: everything receipted arrived, and nothing more for a second.
        receipted = set(tally.receipted)
        await until(lambda: receipted <= set(tally.delivered), SETTLE_TIMEOUT / 2)
        count = -1
        while count != len(tally.delivered):
            count = len(tally.delivered)
            await asyncio.sleep(1.0)
        mark("settled")
        # B's fan-out consumer survived the restart: records produced into the
        # topic by a fresh producer (not through A) reach B's subscriber.
        await produce_directly(broker.bootstrap, kafka_topic)
        await until(lambda: len(tally.direct) >= DIRECT_COUNT, 15)
        mark("direct_checked")
        after_readyz = await wait_for_ready(a)
    # The readers are stopped; both connections still make a round trip.
    still_connected = {"A": await round_trip(sender), "B": await round_trip(subscriber)}
    await sender.close()
    await subscriber.close()

    receipted = set(tally.receipted)
    back = timeline["broker_started"] + RECOVERY_GRACE
    after_recovery = [seq for seq, at in zip(tally.sent, tally.sent_at, strict=True) if at >= back]
    counts = tally.summary()
    counts["sent_after_recovery"] = len(after_recovery)
    counts["receipted_after_recovery"] = len(receipted.intersection(after_recovery))
    reasons = collections.Counter(reason[:120] for reason in tally.failed.values())
    report = {
        **counts,
        "timeline": timeline,
        "readyz_during_outage": outage_readyz,
        "failure_reasons": dict(reasons.most_common(5)),
        "failed_seq_range": [min(tally.failed, default=-1), max(tally.failed, default=-1)],
        "gateway_logs": [str(a.log_path), str(b.log_path)],
    }
    print(f"\nkafka broker restart: {json.dumps(report)}")
    for key, value in counts.items():
        record_property(key, value)
    record_property("timeline", json.dumps(timeline))

    delivered = set(tally.delivered)
    receipted_in_delivery_order = [s for s in tally.delivered if s in receipted]
    assert tally.unexpected == [], tally.unexpected
    assert answered, f"{counts['unanswered']} SENDs got neither RECEIPT nor error: {report}"
    assert set(tally.receipted).isdisjoint(tally.failed), report
    assert counts["duplicates"] == 0, report
    assert receipted <= delivered, (sorted(receipted - delivered)[:20], report)
    assert receipted_in_delivery_order == sorted(receipted), report
    assert counts["lost"] == 0, (sorted(set(tally.sent) - delivered - set(tally.failed)), report)
    assert tally.offsets == sorted(set(tally.offsets)), "x-offset not increasing"
    assert counts["failed"] >= 1, f"the outage failed no SEND: {report}"
    assert outage_readyz[0] == 503, report
    assert "unreachable" in outage_readyz[1], report
    assert after_readyz == 200, report
    assert still_connected == {"A": True, "B": True}, report
    assert sorted(tally.direct) == [DIRECT_BASE + n for n in range(DIRECT_COUNT)], report
    # Once the broker is back, chat works again: what is sent then gets its RECEIPT.
    assert after_recovery, report
    if counts["receipted_after_recovery"] != len(after_recovery):
        raise NotRecovered(f"SENDs still fail after the broker is back: {report}")


async def produce_directly(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(DIRECT_COUNT):
            message = {
                "id": f"{n:024x}",
                "chatRoomId": 4,
                "memberId": 7,
                "nickname": "direct",
                "message": f"seq={DIRECT_BASE + n}",
                "fileId": None,
                "fileName": None,
                "createAt": "2024-11-03T18:23:45.1",
            }
            value = json.dumps(message).encode()
            await producer.send_and_wait(topic, value, key=b"4", partition=4 % 3)
    finally:
        await producer.stop()


async def round_trip(client: StompTestClient) -> bool:
    receipt = client.next_receipt()
    try:
        await client.send("SEND", [("destination", "/pub/ping"), ("receipt", receipt)])
        await client.expect_receipt(receipt)
    except (Closed, TimeoutError, AssertionError):
        return False
    return True


async def wait_for_ready(gateway: GatewayProcess, timeout: float = 15.0) -> int:
    status = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = await gateway.get("/readyz", timeout=5)
        if status == 200:
            break
        await asyncio.sleep(0.2)
    return status
