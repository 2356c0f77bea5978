"""
Defaults under which existing clients connect unchanged (issue 14, point 6):
closes logged as they happened, and the limits a chat client meets first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway import Config, Gateway
from gateway.config import parse_args
from protocol import Command, Frame
from tests.support import node as nodejs
from tests.support.node import NodeClient, Spawn
from tests.support.servers import UNLIMITED_SENDS, GatewayFactory
from tests.support.stomp_client import StompTestClient, chat_body, frame_bytes

spawn = nodejs.spawn_fixture("stompjs_client.mjs", "@stomp/stompjs", "ws")

GATEWAY_LOG = "gateway.transport.connection"


def closed_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == GATEWAY_LOG and " closed remote=" in record.getMessage()
    ]


async def wait_for_closed_line(caplog: pytest.LogCaptureFixture) -> str:
    for _ in range(500):
        if lines := closed_lines(caplog):
            return lines[-1]
        await asyncio.sleep(0.01)
    raise AssertionError("no session closed line")


async def open_connected(gateway: Gateway) -> StompTestClient:
    client = await StompTestClient.open(gateway.port, max_size=None)
    await client.connect("1.2")
    return client


async def too_big(client: StompTestClient) -> None:
    await client.send_raw(b"x" * (3 * 2**20), binary=True)  # over the WebSocket max_size


async def not_utf_8(client: StompTestClient) -> None:
    await client.ws.send(b"SEND\ndestination:/pub/chat/4\n\n\xff\xfe\0", text=True)


async def bad_frame(client: StompTestClient) -> None:
    await client.send_raw(frame_bytes("NOT-A-COMMAND"))


async def tab_closed(client: StompTestClient) -> None:
    await client.ws.close(4000, "tab closed")


async def connection_lost(client: StompTestClient) -> None:
    client.ws.transport.abort()


async def disconnect(client: StompTestClient) -> None:
    await client.send("DISCONNECT", [("receipt", "bye")])


@pytest.mark.parametrize(
    ("end", "logged"),
    [
        (too_big, r"code=1009 reason=frame with \d+ bytes exceeds limit .* closed_by=gateway "),
        (not_utf_8, r"code=1007 reason=invalid .* closed_by=gateway "),
        (bad_frame, r"code=1002 reason=.* closed_by=gateway "),
        (tab_closed, r"code=4000 reason=tab closed closed_by=client "),
        (connection_lost, r"code=1006 reason=connection lost closed_by=client "),
        (disconnect, r"code=1000 reason=client disconnected closed_by=client "),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
async def test_each_close_is_logged_with_its_code_and_who_started_it(
    gateway: Gateway,
    caplog: pytest.LogCaptureFixture,
    end: Callable[[StompTestClient], Awaitable[None]],
    logged: str,
) -> None:
    caplog.set_level("INFO", GATEWAY_LOG)
    async with await open_connected(gateway) as client:
        await end(client)
        line = await wait_for_closed_line(caplog)
    assert re.search(logged, line), line
    assert not [record for record in caplog.records if record.exc_info], "a traceback"


# SEND rate: back-pressure by default (--send-rate-policy throttle).

FLOOD = 300
# A rate well under what the clients send, so that most of the flood is throttled.
SLOW_SENDS = {"send_rate": 50.0, "send_burst": 10}


def chat(message: str, nickname: str = "henhen") -> str:
    return json.dumps({"memberId": 7, "nickname": nickname, "message": message})


def texts(node: NodeClient, client: str) -> list[str]:
    return [json.loads(event["body"])["message"] for event in node.messages(client)]


async def stompjs_connect(node: NodeClient, gateway: Gateway, client: str) -> None:
    """Connect a stompjs client beating every second both ways."""
    await node.do(
        "connect",
        client=client,
        url=nodejs.ws_url(gateway.port),
        heartbeatIncoming=1000,
        heartbeatOutgoing=1000,
    )


async def test_a_flood_of_sends_is_throttled_not_refused(
    make_gateway: GatewayFactory, spawn: Spawn
) -> None:
    gateway = await make_gateway(heartbeat_interval=1000, heartbeat_floor=1000, **SLOW_SENDS)
    node = await spawn()
    for client in ("sender", "other", "watcher"):
        await stompjs_connect(node, gateway, client)
    await node.subscribe("sender", "/user/queue/errors")
    await node.subscribe("watcher", "/sub/chat/4")
    flood = [f"line {i}" for i in range(FLOOD)]
    # A paste of many lines: stompjs writes the 300 SENDs at once, far over 50/s.
    await node.do(
        "publish", client="sender", destination="/pub/chat/4", bodies=[chat(t) for t in flood]
    )
    await node.wait_for(
        lambda _: len(node.messages("watcher")) >= 30, what="the flood's first messages"
    )
    # Another member is not held up by the throttled one.
    await node.do(
        "publish", client="other", destination="/pub/chat/4", body=chat("meanwhile"), receipt="m"
    )
    received = await node.wait_messages("watcher", "/sub/chat/4", FLOOD + 1, timeout=30.0)
    watched = [json.loads(event["body"])["message"] for event in received]
    assert [text for text in watched if text != "meanwhile"] == flood
    assert watched.index("meanwhile") < FLOOD  # delivered while the flood was throttled
    assert node.messages("sender") == []  # no rate-limit error on /user/queue/errors
    assert gateway.metrics.throttled_seconds > 0
    [exported] = [
        line
        for line in gateway.metrics.render().decode().splitlines()
        if line.startswith("stomp_gateway_send_throttled_seconds_total ")
    ]
    assert float(exported.split()[1]) == gateway.metrics.throttled_seconds
    assert gateway.metrics.heartbeat_timeouts == 0
    await node.finish()  # and no heartbeatLost: the server beat throughout


def packed_sends(count: int, **headers: str) -> bytes:
    """``count`` chat SENDs in one WebSocket message, as a client flushing its outbox."""
    return b"".join(
        frame_bytes("SEND", [("destination", "/pub/chat/4"), *headers.items()], chat_body(f"#{i}"))
        for i in range(count)
    )


@contextlib.asynccontextmanager
async def beating(client: StompTestClient, every: float) -> AsyncIterator[None]:
    """Send a heart-beat (an EOL) every ``every`` seconds meanwhile."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            await client.send_raw(b"\n")

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


async def read_messages(client: StompTestClient, count: int) -> list[Frame]:
    frames: list[Frame] = []
    while len(frames) < count:
        frame = await client.read_frame()
        assert frame.command is Command.MESSAGE, frame
        frames.append(frame)
    return frames


async def test_a_throttled_client_that_beats_is_not_dropped_and_keeps_receiving(
    make_gateway: GatewayFactory,
) -> None:
    # 300 SENDs in one WebSocket message at 50/s: the socket stays unread for ~6 s,
    # twice the 3 s of silence (1 s beats, tolerance 3) after which a client is dropped.
    gateway = await make_gateway(heartbeat_interval=1000, heartbeat_floor=1000, **SLOW_SENDS)
    async with await StompTestClient.open(gateway.port) as client:
        await client.connect("1.2", heart_beat="1000,1000")
        await client.subscribe("/sub/chat/4", "room")
        async with beating(client, 0.5):
            await client.send_raw(packed_sends(FLOOD))
            first = await client.read_frame()
            # Its own messages flow back while the rest of its flood waits.
            assert gateway.metrics.frames_received[Command.SEND] < FLOOD
            rest = await read_messages(client, FLOOD - 1)
            frames = await client.barrier()
        bodies = [json.loads(frame.body)["message"] for frame in [first, *rest]]
        assert bodies == [f"#{i}" for i in range(FLOOD)]
        assert frames == []
    assert gateway.metrics.heartbeat_timeouts == 0


async def test_shutdown_does_not_wait_for_a_throttled_flood(make_gateway: GatewayFactory) -> None:
    # 300 SENDs at 1/s would hold the reader for five minutes.
    gateway = await make_gateway(send_rate=1.0, send_burst=1, shutdown_timeout=30.0)
    async with await StompTestClient.open(gateway.port) as client:
        await client.connect("1.2")
        await client.subscribe("/sub/chat/4", "room")
        await client.send_raw(packed_sends(FLOOD))
        await client.expect(Command.MESSAGE)  # the first, within the burst: now throttled
        await gateway.shutdown()
        frames, code = await client.read_until_closed()
    *messages, error = frames  # the SEND being throttled may still take effect
    assert len(messages) <= 1
    assert all(frame.command is Command.MESSAGE for frame in messages)
    assert error.command is Command.ERROR
    assert error.get("message") == "server shutting down"
    assert code == 1001
    assert gateway.metrics.frames_received[Command.SEND] < 5


async def test_a_transaction_larger_than_the_burst_commits(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(**SLOW_SENDS)
    async with await StompTestClient.open(gateway.port) as client:
        await client.connect("1.2")
        await client.subscribe("/sub/chat/4", "room")
        await client.subscribe("/user/queue/errors", "errors")
        await client.send_raw(
            frame_bytes("BEGIN", [("transaction", "t")])
            + packed_sends(30, transaction="t")
            + frame_bytes("COMMIT", [("transaction", "t"), ("receipt", "done")])
        )
        await client.expect_receipt("done")
        frames = await read_messages(client, 30)
        assert [json.loads(f.body)["message"] for f in frames] == [f"#{i}" for i in range(30)]


async def test_reject_policy_refuses_over_the_rate_and_a_refused_commit_spends_nothing(
    make_gateway: GatewayFactory,
) -> None:
    # A bucket that does not refill during the test: 10 SENDs, then one every 100 s.
    gateway = await make_gateway(send_rate_policy="reject", send_rate=0.01, send_burst=10)
    async with await StompTestClient.open(gateway.port) as client:
        await client.connect("1.2")
        await client.subscribe("/user/queue/errors", "errors")
        await client.send_raw(
            frame_bytes("BEGIN", [("transaction", "t")])
            + packed_sends(11, transaction="t")
            + frame_bytes("COMMIT", [("transaction", "t"), ("receipt", "big")])
        )
        error = await client.read_frame()
        assert error.command is Command.MESSAGE
        assert error.get("receipt-id") == "big"
        assert error.body == (
            b"rate limit exceeded: the transaction holds 11 SENDs, more than --send-burst 10"
        )
        # The refusal spent nothing: the whole burst is still there.
        await client.send_raw(
            frame_bytes("BEGIN", [("transaction", "u")])
            + packed_sends(10, transaction="u")
            + frame_bytes("COMMIT", [("transaction", "u"), ("receipt", "fits")])
        )
        await client.expect_receipt("fits")
        await client.send_chat(4, chat_body("one more"), receipt=False)
        await client.send("SEND", [("destination", "/pub/chat/4"), ("receipt", "over")], b"{}")
        refused = [await client.read_frame() for _ in range(2)]
        assert [f.get("receipt-id") for f in refused] == [None, "over"]
        assert all(f.body.startswith(b"rate limit exceeded: at most 0.01 SENDs") for f in refused)


# Sizes: messages as long as the frame allows, bounded nicknames, bounded memory.


async def send_and_collect(client: StompTestClient, body: bytes, receipt: str) -> Frame:
    """SEND ``body`` to room 4 with a receipt; return the MESSAGE or error it caused."""
    await client.send("SEND", [("destination", "/pub/chat/4"), ("receipt", receipt)], body)
    caused = await client.read_frame()
    if caused.get("destination") == "/sub/chat/4":
        await client.expect_receipt(receipt)  # a refusal carries the receipt-id instead
    return caused


async def room_client(gateway: Gateway) -> StompTestClient:
    client = await StompTestClient.open(gateway.port, max_size=None)
    await client.connect("1.2")
    await client.subscribe("/sub/chat/4", "room")
    await client.subscribe("/user/queue/errors", "errors")
    return client


async def test_messages_are_bounded_by_the_frame_only(gateway: Gateway) -> None:
    assert gateway.config.max_message_length == 0
    text = "안" * 20_000  # 60,000 bytes of UTF-8: within the 64 KiB frame, as the seed took
    async with await room_client(gateway) as client:
        frame = await send_and_collect(client, chat_body(text), "long")
        assert frame.get("destination") == "/sub/chat/4", frame
        assert json.loads(frame.body)["message"] == text


async def test_max_message_length_still_bounds_when_set(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(max_message_length=10)
    async with await room_client(gateway) as client:
        frame = await send_and_collect(client, chat_body("x" * 11), "long")
        assert frame.body == b"message is longer than 10 characters"


async def test_nicknames_are_bounded(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway()
    assert gateway.config.max_nickname_length == 100
    async with await room_client(gateway) as client:
        accepted = await send_and_collect(client, chat_body(nickname="닉" * 100), "fits")
        assert json.loads(accepted.body)["nickname"] == "닉" * 100
        refused = await send_and_collect(client, chat_body(nickname="n" * 101), "long")
        assert refused.get("destination") == "/user/queue/errors"
        assert refused.body == b"nickname is longer than 100 characters"


async def kept_bytes(gateway: Gateway, room_id: int) -> int:
    """Bytes of text the store and the recovery buffer hold for ``room_id``."""
    stored = await gateway.store.history(room_id, before=None, limit=10**6)
    buffered = [message for message, _ in gateway.chat.recent.after(room_id, -1)]
    return sum(len(m.nickname) + len(m.message or "") for m in [*stored, *buffered])


async def flood_room(gateway: Gateway, count: int, nickname: str) -> list[Frame]:
    """Send ``count`` messages with ``nickname`` to room 4; return the errors they got."""
    async with await StompTestClient.open(gateway.port) as client:
        await client.connect("1.2")
        await client.subscribe("/user/queue/errors", "errors")
        body = chat_body("hi", nickname=nickname)
        for _ in range(count):
            await client.send("SEND", [("destination", "/pub/chat/4")], body)
        await client.send_chat(4, chat_body("last"), receipt=False)
        errors = await client.barrier()
    await wait_stored(gateway, "last")
    return errors


async def wait_stored(gateway: Gateway, text: str) -> None:
    for _ in range(500):
        [newest] = await gateway.store.history(4, before=None, limit=1) or [None]
        if newest is not None and newest.message == text:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{text!r} never stored")


NICKNAME_60_KB = "n" * 60_000


async def test_a_thousand_messages_with_huge_nicknames_keep_no_memory(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(**UNLIMITED_SENDS)
    errors = await flood_room(gateway, 1000, NICKNAME_60_KB)
    assert len(errors) == 1000
    assert {frame.body for frame in errors} == {b"nickname is longer than 100 characters"}
    assert await kept_bytes(gateway, 4) < 2**10


async def test_store_and_recovery_buffer_are_bounded_by_bytes(
    make_gateway: GatewayFactory,
) -> None:
    # Nicknames let through, so only the byte bounds stand between them and memory.
    gateway = await make_gateway(
        max_nickname_length=2**16,
        history_bytes=2**20,
        recovery_buffer_bytes=2 * 2**20,
        **UNLIMITED_SENDS,
    )
    assert await flood_room(gateway, 1000, NICKNAME_60_KB) == []
    # 1,000 x 60 KB were 120 MB kept twice over; now the newest ~3 MB. (str of ASCII:
    # a byte a character, so the store's 1 MiB holds at most 17 of them.)
    assert await kept_bytes(gateway, 4) < 3 * 2**20 + 2**10
    stored = await gateway.store.history(4, before=None, limit=10**6)
    assert 10 <= len(stored) <= 18  # and the small "last"
    assert stored[-1].message == "last"
    assert len(gateway.chat.recent.after(4, -1)) >= 30


def test_frames_larger_than_the_outbound_cap_are_refused_in_config() -> None:
    with pytest.raises(ValueError, match=r"--max-outbound-bytes \(524288\) must be at least"):
        Config(max_frame_size=600_000)
    with pytest.raises(ValueError, match=r"--max-frame-size \(65536\) \+ 1024"):
        Config(max_outbound_bytes=65_536)
    Config(max_frame_size=600_000, max_outbound_bytes=601_024)


def test_frames_larger_than_the_outbound_cap_are_refused_on_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["--max-frame-size", "1048576", "--max-outbound-bytes", "65536"], {})
    assert info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("stomp-gateway: error: --max-outbound-bytes (65536) must be at least")
    env = {"STOMP_GATEWAY_MAX_FRAME_SIZE": "1048576"}
    with pytest.raises(SystemExit):
        parse_args([], env)


async def test_one_message_as_large_as_the_outbound_cap_reaches_its_subscriber(
    make_gateway: GatewayFactory,
) -> None:
    size = 64 * 1024
    gateway = await make_gateway(max_frame_size=size, max_outbound_bytes=size + 1024)
    # The largest SEND the frame allows: its MESSAGE, with headers and fields, is larger.
    text = "x" * (size - 100 - len(frame_bytes("SEND", [("destination", "/pub/chat/4")])))
    async with await room_client(gateway) as client:
        frame = await send_and_collect(client, chat_body(text), "big")
        assert len(frame.body) > size
        assert json.loads(frame.body)["message"] == text
        assert await client.barrier() == []
    assert gateway.metrics.slow_consumer_disconnects == 0
