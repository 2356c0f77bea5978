"""
Recovery on reconnect.

A SUBSCRIBE to ``/sub/chat/{room}`` carrying ``x-last-message-id`` gets every
later message of the room exactly once and in order, then live messages with
no gap and no duplicate at the seam; its RECEIPT and the subscription's first
MESSAGE say ``x-recovered: true``, or ``false`` (unknown id, too much missed:
nothing is replayed, the client reloads the history). Catch-up over HTTP:
``GET /v1/api/chat/{room}/messages?after={id}&limit=``.

Each scenario runs with the in-memory store and with MongoDB; the last one
runs two gateway instances on one Kafka topic.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from bson import ObjectId

from gateway import Config, Gateway
from protocol import Command, Frame
from tests.support.http import http_get
from tests.support.servers import UNLIMITED_SENDS, GatewayFactory
from tests.support.stomp_client import StompTestClient, chat_body, connected, payload

pytestmark = pytest.mark.timeout(120)

WAIT = 15.0
LAST_ID = "x-last-message-id"
RECOVERED = "x-recovered"
STORES = ["memory", pytest.param("mongo", marks=pytest.mark.mongo)]


@pytest.fixture(params=STORES)
async def store_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """
    Gateway options for the in-memory store, or for MongoDB in a database of the test's;
    one sender streams thousands of messages, so the SEND rate limit is lifted.
    """
    options: dict[str, Any] = dict(UNLIMITED_SENDS)
    if request.param == "mongo":
        options["mongo_uri"] = request.getfixturevalue("mongo_db_uri")
    return options


def text_of(frame: Frame) -> str:
    text: str = payload(frame)["message"]
    return text


async def subscribe_recovering(
    client: StompTestClient, room: int, last_id: str, subscription_id: str = "again"
) -> tuple[Frame, list[Frame]]:
    """
    SUBSCRIBE with ``x-last-message-id``; return the RECEIPT and the MESSAGEs
    that came before it (the contract does not order them).
    """
    receipt = client.next_receipt()
    await client.send(
        "SUBSCRIBE",
        [
            ("id", subscription_id),
            ("destination", f"/sub/chat/{room}"),
            (LAST_ID, last_id),
            ("receipt", receipt),
        ],
    )
    early: list[Frame] = []
    while True:
        frame = await client.read_frame(WAIT)
        if frame.command is Command.RECEIPT and frame.get("receipt-id") == receipt:
            return frame, early
        assert frame.command is Command.MESSAGE, frame
        early.append(frame)


async def read_until(client: StompTestClient, last_text: str) -> list[Frame]:
    """Read MESSAGEs up to the one carrying ``last_text``."""
    frames: list[Frame] = []
    while not frames or text_of(frames[-1]) != last_text:
        frames.append(await client.expect(Command.MESSAGE, timeout=WAIT))
    return frames


async def send_texts(sender: StompTestClient, room: int, texts: list[str]) -> None:
    """Pipelined SENDs, then a barrier: all are on the bus when this returns."""
    for text in texts:
        await sender.send_chat(room, chat_body(text), receipt=False)
    await sender.barrier()


async def wait_stored(gateway: Gateway, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while gateway.persister.lag:
        assert time.monotonic() < deadline, f"persister lag {gateway.persister.lag}"
        await asyncio.sleep(0.02)


# Reconnect in the middle of a steady stream.


@dataclasses.dataclass
class Outcome:
    sent: int
    reconnects: int
    missed_at_reconnect: list[int]  # sent while the client was away, when it resubscribed
    before_receipt: list[int]  # MESSAGEs of the new subscription before its RECEIPT
    seconds: float


async def reconnect_mid_stream(
    send_port: int,
    reader_ports: Sequence[int],
    opened: list[StompTestClient],
    *,
    room: int = 42,
    count: int = 600,
    cut_after: int = 150,
    missed: int = 30,
    interval: float = 0.005,
) -> Outcome:
    """
    A sender posts ``count`` messages, one every ``interval`` seconds. A client
    reads them on ``reader_ports[0]``, loses its socket after ``cut_after``
    messages, reconnects on the next port of ``reader_ports`` with the last id it
    saw once ``missed`` more were sent, and so on; it must end with the whole
    sequence: no gap, no duplicate, in order.
    """
    started = time.monotonic()
    texts = [f"m{n}" for n in range(count)]
    observer = await connected(reader_ports[0], opened)  # connected all along: the truth
    await observer.subscribe(f"/sub/chat/{room}", "all")
    reader = await connected(reader_ports[0], opened)
    await reader.subscribe(f"/sub/chat/{room}", "sub-0")
    sender = await connected(send_port, opened)
    observed: list[Frame] = []
    seen: list[Frame] = []
    missed_at_reconnect: list[int] = []
    before_receipt: list[int] = []

    async def send() -> None:
        for text in texts:
            await sender.send_chat(room, chat_body(text), receipt=False)
            await asyncio.sleep(interval)
        await sender.barrier()

    async def observe() -> None:
        while not observed or text_of(observed[-1]) != texts[-1]:
            observed.append(await observer.expect(Command.MESSAGE, timeout=WAIT))

    sending = asyncio.create_task(send())
    observing = asyncio.create_task(observe())
    try:
        for number, port in enumerate(reader_ports[1:], start=1):
            target = len(seen) + cut_after
            while len(seen) < target:
                seen.append(await reader.expect(Command.MESSAGE, timeout=WAIT))
            reader.ws.transport.abort()  # the socket is cut: no DISCONNECT, no close frame
            deadline = time.monotonic() + WAIT
            while len(observed) < len(seen) + missed:
                assert time.monotonic() < deadline, f"observer saw only {len(observed)}"
                await asyncio.sleep(0.001)
            assert not sending.done(), "the stream ended before a reconnect: make it longer"

            reader = await connected(port, opened)
            missed_at_reconnect.append(len(observed) - len(seen))
            subscription = f"sub-{number}"
            receipt, early = await subscribe_recovering(
                reader, room, payload(seen[-1])["id"], subscription
            )
            assert receipt.get(RECOVERED) == "true", receipt
            before_receipt.append(len(early))
            first = early[0] if early else await reader.expect(Command.MESSAGE, timeout=WAIT)
            assert first.get(RECOVERED) == "true", first
            for frame in early or [first]:
                assert frame.get("subscription") == subscription, frame
                seen.append(frame)
        while text_of(seen[-1]) != texts[-1]:
            seen.append(await reader.expect(Command.MESSAGE, timeout=WAIT))
        await sending
        await observing
    finally:
        for task in (sending, observing):
            task.cancel()
        await asyncio.gather(sending, observing, return_exceptions=True)
    after = await reader.barrier()

    truth = [payload(frame) for frame in observed]
    assert [m["message"] for m in truth] == texts
    assert len({m["id"] for m in truth}) == count
    assert [frame for frame in after if frame.command is Command.MESSAGE] == []
    combined = [payload(frame) for frame in seen]
    assert [m["message"] for m in combined] == texts, "gap, duplicate or disorder"
    assert combined == truth
    return Outcome(
        sent=count,
        reconnects=len(reader_ports) - 1,
        missed_at_reconnect=missed_at_reconnect,
        before_receipt=before_receipt,
        seconds=round(time.monotonic() - started, 2),
    )


async def test_reconnect_mid_stream_gets_everything_once_in_order(
    make_gateway: GatewayFactory, store_options: dict[str, Any], clients: list[StompTestClient]
) -> None:
    gateway = await make_gateway(**store_options)
    print(await reconnect_mid_stream(gateway.port, [gateway.port] * 2, clients))


async def test_reconnect_again_and_again(
    make_gateway: GatewayFactory, store_options: dict[str, Any], clients: list[StompTestClient]
) -> None:
    gateway = await make_gateway(**store_options)
    outcome = await reconnect_mid_stream(
        gateway.port, [gateway.port] * 5, clients, count=1000, cut_after=100
    )
    print(outcome)


async def test_reconnect_after_the_store_has_the_missed_messages(
    make_gateway: GatewayFactory, store_options: dict[str, Any], clients: list[StompTestClient]
) -> None:
    """Nothing live at the seam, no recovery buffer: everything missed comes from the store."""
    gateway = await make_gateway(recovery_buffer=0, **store_options)
    sender = await connected(gateway.port, clients)
    watcher = await connected(gateway.port, clients)
    await watcher.subscribe("/sub/chat/8")
    await send_texts(sender, 8, [f"a{n}" for n in range(20)])
    frames = [await watcher.expect(Command.MESSAGE) for _ in range(20)]
    await wait_stored(gateway)

    again = await connected(gateway.port, clients)
    receipt, early = await subscribe_recovering(again, 8, payload(frames[4])["id"])
    assert receipt.get(RECOVERED) == "true"
    replayed = early + [m for m in await again.barrier() if m.command is Command.MESSAGE]
    assert [payload(f) for f in replayed] == [payload(f) for f in frames[5:]]
    assert replayed[0].get(RECOVERED) == "true"
    # Then live, with nothing replayed twice.
    await sender.send_chat(8, chat_body("live"))
    live = await again.expect(Command.MESSAGE)
    assert text_of(live) == "live"
    assert [f for f in await again.barrier() if f.command is Command.MESSAGE] == []


async def test_nothing_missed_is_recovered_and_live_goes_on(
    make_gateway: GatewayFactory, store_options: dict[str, Any], clients: list[StompTestClient]
) -> None:
    gateway = await make_gateway(**store_options)
    sender = await connected(gateway.port, clients)
    await send_texts(sender, 9, ["a", "b", "c"])
    await wait_stored(gateway)
    (newest,) = await http_history(gateway.port, 9, "limit=1")

    again = await connected(gateway.port, clients)
    receipt, early = await subscribe_recovering(again, 9, newest["id"])
    assert (receipt.get(RECOVERED), early) == ("true", [])
    assert await again.barrier() == []
    await sender.send_chat(9, chat_body("d"))
    live = await again.expect(Command.MESSAGE)
    assert (text_of(live), live.get(RECOVERED)) == ("d", "true")


# Not recovered: reload the history.


@pytest.mark.parametrize("kind", ["fresh id", "malformed", "other room's message"])
async def test_unknown_last_id_is_not_recovered_and_live_goes_on(
    make_gateway: GatewayFactory,
    store_options: dict[str, Any],
    clients: list[StompTestClient],
    kind: str,
) -> None:
    gateway = await make_gateway(**store_options)
    sender = await connected(gateway.port, clients)
    await send_texts(sender, 11, ["a", "b", "c"])
    await send_texts(sender, 12, ["elsewhere"])
    await wait_stored(gateway)
    (elsewhere,) = await http_history(gateway.port, 12, "")
    last_id = {
        "fresh id": str(ObjectId()),
        "malformed": "not-a-message-id",
        "other room's message": elsewhere["id"],
    }[kind]

    again = await connected(gateway.port, clients)
    receipt, early = await subscribe_recovering(again, 11, last_id)
    assert receipt.get(RECOVERED) == "false", receipt
    assert early == []
    assert await again.barrier() == []  # no replay
    await send_texts(sender, 11, ["live1", "live2"])
    live = [await again.expect(Command.MESSAGE) for _ in range(2)]
    assert [text_of(f) for f in live] == ["live1", "live2"]
    assert live[0].get(RECOVERED) == "false"
    assert await again.barrier() == []


async def missed_after_anchor(
    gateway: Gateway, opened: list[StompTestClient], room: int, missed: int
) -> tuple[str, str]:
    """Send an anchor and ``missed`` messages after it; return the anchor's id and the last text."""
    sender = await connected(gateway.port, opened)
    await send_texts(sender, room, ["anchor"])
    await wait_stored(gateway)
    (anchor,) = await http_history(gateway.port, room, "limit=1")
    await send_texts(sender, room, [f"x{n}" for n in range(missed)])
    await wait_stored(gateway)
    return anchor["id"], f"x{missed - 1}"


@pytest.mark.parametrize(
    "store_options",
    [
        "memory",
        pytest.param("mongo", marks=pytest.mark.mongo),
    ],
    indirect=True,
)
async def test_more_than_1000_missed_is_not_recovered(
    make_gateway: GatewayFactory, store_options: dict[str, Any], clients: list[StompTestClient]
) -> None:
    """docs/recovery.md: more than 1000 missed messages give ``x-recovered: false``."""
    gateway = await make_gateway(**store_options)
    anchor, _ = await missed_after_anchor(gateway, clients, 13, 1001)
    again = await connected(gateway.port, clients)
    receipt, early = await subscribe_recovering(again, 13, anchor)
    replayed = early + [f for f in await again.barrier() if f.command is Command.MESSAGE]
    assert (receipt.get(RECOVERED), len(replayed)) == ("false", 0)


@pytest.mark.parametrize(
    "store_options",
    [
        "memory",
        pytest.param(
            "mongo",
            marks=pytest.mark.mongo,
        ),
    ],
    indirect=True,
)
async def test_1000_missed_are_recovered(
    make_gateway: GatewayFactory, store_options: dict[str, Any], clients: list[StompTestClient]
) -> None:
    gateway = await make_gateway(**store_options)
    anchor, last = await missed_after_anchor(gateway, clients, 14, 1000)
    again = await connected(gateway.port, clients)
    receipt, early = await subscribe_recovering(again, 14, anchor)
    assert receipt.get(RECOVERED) == "true", receipt
    replayed = early + [f for f in await again.barrier() if f.command is Command.MESSAGE]
    assert [text_of(f) for f in replayed] == [f"x{n}" for n in range(1000)]
    assert text_of(replayed[-1]) == last


# Catch-up over HTTP.


async def http_json(port: int, path: str) -> tuple[int, Any]:
    status, body = await http_get(port, path, timeout=10)
    return status, json.loads(body)


async def http_history(port: int, room: int, query: str) -> list[dict[str, Any]]:
    status, messages = await http_json(port, f"/v1/api/chat/{room}?{query}")
    assert status == 200, messages
    assert isinstance(messages, list)
    return messages


async def test_catch_up_endpoint(
    make_gateway: GatewayFactory, store_options: dict[str, Any], clients: list[StompTestClient]
) -> None:
    gateway = await make_gateway(**store_options)
    port = gateway.port
    sender = await connected(port, clients)
    watcher = await connected(port, clients)
    await watcher.subscribe("/sub/chat/3")
    await send_texts(sender, 3, [f"c{n}" for n in range(10)])
    await send_texts(sender, 4, ["other"])
    sent = [payload(await watcher.expect(Command.MESSAGE)) for _ in range(10)]
    await wait_stored(gateway)
    (other,) = await http_history(port, 4, "")

    def after(query: str) -> str:
        return f"/v1/api/chat/3/messages?{query}"

    assert await http_json(port, after(f"after={sent[3]['id']}")) == (200, sent[4:])
    assert await http_json(port, after(f"after={sent[3]['id']}&limit=2")) == (200, sent[4:6])
    assert await http_json(port, after(f"limit=1&after={sent[0]['id']}")) == (200, sent[1:2])
    assert await http_json(port, after(f"after={sent[-1]['id']}")) == (200, [])

    for unknown in (str(ObjectId()), other["id"]):
        status, error = await http_json(port, after(f"after={unknown}"))
        assert status == 404, (unknown, error)
        assert error["error"], error
    for malformed in ("xyz", sent[0]["id"].upper(), sent[0]["id"][:-1], ""):
        status, error = await http_json(port, after(f"after={malformed}"))
        assert status == 400, (malformed, error)
        assert error["error"], error


# Two instances on one Kafka topic: reconnect to the other one.


@pytest.mark.kafka
@pytest.mark.mongo
async def test_reconnect_to_the_other_instance_gets_everything_once_in_order(
    make_gateway: GatewayFactory,
    kafka_bootstrap: str,
    kafka_topic: str,
    mongo_db_uri: str,
    clients: list[StompTestClient],
) -> None:
    options = {
        "kafka_bootstrap": kafka_bootstrap,
        "kafka_topic": kafka_topic,
        "mongo_uri": mongo_db_uri,
        **UNLIMITED_SENDS,
    }
    a = await make_gateway(**options)
    b = await make_gateway(**options)
    # A, then B, then A again.
    print(await reconnect_mid_stream(a.port, [a.port, b.port, a.port], clients, count=900))


# A hole between what the store has and what the buffer holds.


def hold_saves(gateway: Gateway, gate: asyncio.Event) -> None:
    """Make the persister wait for ``gate`` before each write: the store falls behind."""
    store = gateway.store
    save = store.save

    async def held(messages: Sequence[Any]) -> None:
        await gate.wait()
        await save(messages)

    store.save = held  # type: ignore[method-assign]


async def stored_anchor(gateway: Gateway, sender: StompTestClient, room: int) -> str:
    """Send an anchor message to ``room`` and return its id once the store has it."""
    await send_texts(sender, room, ["anchor"])
    deadline = time.monotonic() + WAIT
    while not (found := await http_history(gateway.port, room, "limit=1")):
        assert time.monotonic() < deadline, "the anchor was never stored"
        await asyncio.sleep(0.05)
    anchor_id: str = found[0]["id"]
    return anchor_id


async def replay(
    client: StompTestClient, room: int, anchor: str, last_text: str
) -> tuple[Frame, list[Frame]]:
    """Resubscribe after ``anchor``; return the RECEIPT and the MESSAGEs up to ``last_text``."""
    receipt, early = await subscribe_recovering(client, room, anchor)
    frames = early
    if not frames or text_of(frames[-1]) != last_text:
        frames += await read_until(client, last_text)
    return receipt, frames


async def test_hole_between_store_and_buffer_without_a_log_is_not_recovered(
    make_gateway: GatewayFactory, clients: list[StompTestClient]
) -> None:
    """The in-memory bus keeps no log: a hole it cannot fill answers ``x-recovered: false``."""
    gateway = await make_gateway(recovery_buffer=5, **UNLIMITED_SENDS)
    gate = asyncio.Event()
    gate.set()
    hold_saves(gateway, gate)
    sender = await connected(gateway.port, clients)
    anchor = await stored_anchor(gateway, sender, 15)
    gate.clear()  # the store keeps the anchor; the buffer only the newest 5 of 20
    try:
        await send_texts(sender, 15, [f"h{n}" for n in range(20)])
        again = await connected(gateway.port, clients)
        receipt, early = await subscribe_recovering(again, 15, anchor)
        replayed = early + [f for f in await again.barrier() if f.command is Command.MESSAGE]
        assert (receipt.get(RECOVERED), replayed) == ("false", [])
        await send_texts(sender, 15, ["live"])
        live = await again.expect(Command.MESSAGE)
        assert (text_of(live), live.get(RECOVERED)) == ("live", "false")
        assert gateway.metrics.recoveries == {"not recovered": 1}
    finally:
        gate.set()


async def test_recovery_past_its_timeout_is_not_recovered_and_live_goes_on(
    make_gateway: GatewayFactory, clients: list[StompTestClient], caplog: pytest.LogCaptureFixture
) -> None:
    """A store that never answers (MongoDB paused) holds the subscription back no longer."""
    gateway = await make_gateway(recovery_timeout=0.5, **UNLIMITED_SENDS)
    sender = await connected(gateway.port, clients)
    anchor = await stored_anchor(gateway, sender, 19)
    never = asyncio.Event()

    async def paused(*_: Any) -> None:
        await never.wait()

    gateway.store.after = paused  # type: ignore[method-assign]
    again = await connected(gateway.port, clients)
    receipt, early = await subscribe_recovering(again, 19, anchor)
    assert (receipt.get(RECOVERED), early) == ("false", [])
    await send_texts(sender, 19, ["live"])
    live = await again.expect(Command.MESSAGE)
    assert (text_of(live), live.get(RECOVERED)) == ("live", "false")
    assert "cannot recover room 19: recovery timed out" in caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.mongo
async def test_recovery_after_a_restart_on_the_in_memory_bus_comes_from_the_store(
    make_gateway: GatewayFactory, mongo_db_uri: str, clients: list[StompTestClient]
) -> None:
    """A new process's bus has carried nothing yet: the store, whole, is all there is."""
    options = {"mongo_uri": mongo_db_uri, "port": 0}
    before = Gateway(Config(**options))
    await before.start()
    try:
        sender = await connected(before.port, clients)
        anchor = await stored_anchor(before, sender, 20)
        await send_texts(sender, 20, ["r0", "r1"])
        await wait_stored(before)
    finally:
        await before.shutdown()
    after = await make_gateway(**options)
    again = await connected(after.port, clients)
    receipt, early = await subscribe_recovering(again, 20, anchor)
    replayed = early + [f for f in await again.barrier() if f.command is Command.MESSAGE]
    assert (receipt.get(RECOVERED), [text_of(f) for f in replayed]) == ("true", ["r0", "r1"])
    assert after.metrics.recoveries == {"store": 1}


@pytest.fixture
async def held_pair(
    make_gateway: GatewayFactory, kafka_bootstrap: str, created_kafka_topic: str, mongo_db_uri: str
) -> AsyncIterator[tuple[Gateway, Gateway, asyncio.Event]]:
    """
    Instances A and B on one Kafka topic and one MongoDB, recovery buffers of 50,
    and a gate their persisters wait for before each write (open at first).
    """
    options = {
        "kafka_bootstrap": kafka_bootstrap,
        "kafka_topic": created_kafka_topic,
        "mongo_uri": mongo_db_uri,
        "recovery_buffer": 50,
        **UNLIMITED_SENDS,
    }
    a = await make_gateway(**options)
    b = await make_gateway(**options)
    gate = asyncio.Event()
    gate.set()
    for gateway in (a, b):
        hold_saves(gateway, gate)
    yield a, b, gate
    gate.set()  # shutdown stores what is held


async def miss_while_persister_held(
    a: Gateway, b: Gateway, gate: asyncio.Event, opened: list[StompTestClient], room: int
) -> tuple[str, list[str]]:
    """
    Store an anchor of ``room``, then hold the persisters while 200 messages of
    the room (and 60 of another room of its partition) pass through A and are
    fanned out by B; return the anchor's id and the texts.
    """
    sender = await connected(a.port, opened)
    watcher = await connected(b.port, opened)
    await watcher.subscribe(f"/sub/chat/{room}")
    anchor = await stored_anchor(b, sender, room)
    gate.clear()
    texts = [f"g{n}" for n in range(200)]
    for n, text in enumerate(texts):
        await sender.send_chat(room, chat_body(text), receipt=False)
        if n % 10 == 0:  # the same partition (room % 3): skipped by key in the log
            await sender.send_chat(room + 3, chat_body(f"other{n}"), receipt=False)
    await sender.barrier()
    seen = [text_of(f) for f in await read_until(watcher, texts[-1]) if text_of(f) != "anchor"]
    assert seen == texts  # B fanned them all out; its buffer kept the newest 50 records
    status, stored = await http_json(b.port, f"/v1/api/chat/{room}/messages?after={anchor}")
    assert (status, stored) == (200, [])  # none is in the store
    return anchor, texts


@pytest.mark.kafka
@pytest.mark.mongo
async def test_hole_between_store_and_buffer_is_read_from_the_kafka_log(
    held_pair: tuple[Gateway, Gateway, asyncio.Event], clients: list[StompTestClient]
) -> None:
    a, b, gate = held_pair
    anchor, texts = await miss_while_persister_held(a, b, gate, clients, 16)

    again = await connected(b.port, clients)
    receipt, frames = await replay(again, 16, anchor, texts[-1])
    assert receipt.get(RECOVERED) == "true", receipt
    assert [text_of(f) for f in frames] == texts  # all 200, once, in order
    assert frames[0].get(RECOVERED) == "true"
    assert [f for f in await again.barrier() if f.command is Command.MESSAGE] == []
    sender = await connected(a.port, clients)
    await send_texts(sender, 16, ["live"])
    assert text_of(await again.expect(Command.MESSAGE, timeout=WAIT)) == "live"
    assert [f for f in await again.barrier() if f.command is Command.MESSAGE] == []
    assert (b.metrics.recoveries, b.metrics.messages_recovered) == ({"log": 1}, 200)


@pytest.mark.kafka
@pytest.mark.mongo
async def test_hole_no_longer_retained_is_not_recovered(
    held_pair: tuple[Gateway, Gateway, asyncio.Event],
    clients: list[StompTestClient],
    kafka_bootstrap: str,
    created_kafka_topic: str,
) -> None:
    """The topic dropped the start of the hole (DeleteRecords): ``x-recovered: false``."""
    a, b, gate = held_pair
    anchor, _ = await miss_while_persister_held(a, b, gate, clients, 17)
    await delete_records(kafka_bootstrap, created_kafka_topic, 17 % 3, before=50)

    again = await connected(b.port, clients)
    receipt, early = await subscribe_recovering(again, 17, anchor)
    replayed = early + [f for f in await again.barrier() if f.command is Command.MESSAGE]
    assert (receipt.get(RECOVERED), replayed) == ("false", [])
    sender = await connected(a.port, clients)
    await send_texts(sender, 17, ["live"])
    live = await again.expect(Command.MESSAGE, timeout=WAIT)
    assert (text_of(live), live.get(RECOVERED)) == ("live", "false")
    assert (b.metrics.recoveries, b.metrics.messages_recovered) == ({"not recovered": 1}, 0)


async def delete_records(bootstrap: str, topic: str, partition: int, before: int) -> None:
    """Advance the partition's log start offset to ``before``, as retention would."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(topic, partition)
        deleted = await admin.delete_records({tp: RecordsToDelete(before)}, timeout_ms=10_000)
        assert deleted == {tp: before}, deleted
    finally:
        await admin.close()


@pytest.mark.kafka
@pytest.mark.mongo
async def test_quiet_room_in_a_busy_partition_recovers_without_reading_the_log(
    held_pair: tuple[Gateway, Gateway, asyncio.Event], clients: list[StompTestClient]
) -> None:
    """
    The store holds everything the persisters committed: a room with nothing
    new, whose partition carried more than the buffer holds, needs no log.
    """
    a, b, _ = held_pair
    sender = await connected(a.port, clients)
    anchor = await stored_anchor(b, sender, 18)
    await send_texts(sender, 21, [f"busy{n}" for n in range(200)])  # 21 % 3 == 18 % 3
    deadline = time.monotonic() + WAIT
    while (await b.persister.stored_before(18 % 3) or 0) < 201:
        assert time.monotonic() < deadline, "the persisters never committed the busy room"
        await asyncio.sleep(0.05)

    again = await connected(b.port, clients)
    receipt, early = await subscribe_recovering(again, 18, anchor)
    assert (receipt.get(RECOVERED), early) == ("true", [])
    await send_texts(sender, 18, ["live"])
    assert text_of(await again.expect(Command.MESSAGE, timeout=WAIT)) == "live"
    assert b.metrics.recoveries == {"store": 1}
