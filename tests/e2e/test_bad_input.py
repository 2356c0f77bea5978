"""
Hostile and broken input, one table, one gateway.

Every case runs against the same gateway (authentication on, room
authorization from the token's ``rooms`` claim) while a canary client streams
numbered messages to its own room throughout. Each case asserts the exact
error its client gets (an ``ERROR`` frame's ``message`` and the close, or an
application error on ``/user/queue/errors`` with the session going on), that
the canary kept receiving meanwhile, and the last test that the canary lost
nothing.

The "frame byte by byte over 30 s" of the issue runs against a
``--connect-timeout`` of 2 s instead of the default 10 s, to keep the suite fast:
the slow client is cut off at the CONNECT deadline whatever its pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from websockets.protocol import State

from gateway import Config, Gateway
from protocol import Command, Frame
from tests.support.stomp_client import Closed, StompTestClient, frame_bytes
from tests.support.tokens import bearer, hs256

pytestmark = pytest.mark.asyncio(loop_scope="module")

CONNECT_TIMEOUT = 2.0
ERRORS = "/user/queue/errors"
TOKEN = hs256(7, nickname="henhen", rooms=[4])
CANARY_ROOM = 1000


def connect_frame(*headers: tuple[str, str]) -> bytes:
    return frame_bytes("CONNECT", [("accept-version", "1.2"), ("host", "h"), *headers])


def send(destination: str, body: bytes | str = b"", *headers: tuple[str, str]) -> bytes:
    return frame_bytes("SEND", [("destination", destination), *headers], body)


def chat(**fields: Any) -> bytes:
    return json.dumps({"message": "hi", **fields}).encode()


class Canary:
    """A client streaming numbered messages to its own room, checking its echoes."""

    def __init__(self, client: StompTestClient) -> None:
        self.client = client
        self.sent = 0
        self.received = 0
        self.problems: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._send()), asyncio.create_task(self._read())]

    async def _send(self) -> None:
        while True:
            await self.client.send_chat(CANARY_ROOM, chat(message=str(self.sent)), receipt=False)
            self.sent += 1
            await asyncio.sleep(0.05)  # 20 per second, under the 50/s SEND limit

    async def _read(self) -> None:
        while True:
            frame = await self.client.read_frame(timeout=30)
            if frame.command is not Command.MESSAGE or frame.get("destination") != (
                f"/sub/chat/{CANARY_ROOM}"
            ):
                self.problems.append(f"unexpected {frame}")
                continue
            number = int(json.loads(frame.body)["message"])
            if number != self.received:
                self.problems.append(f"expected #{self.received}, got #{number}")
            self.received = number + 1

    async def advance(self, past: int, timeout: float = 10.0) -> None:
        """Wait until the canary received more than ``past`` messages."""
        async with asyncio.timeout(timeout):
            while self.received <= past:
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop sending, and wait for the echo of everything sent."""
        sender, reader = self._tasks
        await _cancel(sender)
        async with asyncio.timeout(10):
            while self.received < self.sent and not reader.done():
                await asyncio.sleep(0.01)
        await _cancel(reader)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Closed):
        await task


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def gateway() -> AsyncIterator[Gateway]:
    from tests.support.tokens import SECRET

    gateway = Gateway(
        Config(
            port=0,
            jwt_secret=SECRET,
            room_authorization="claim",
            connect_timeout=CONNECT_TIMEOUT,
            max_message_length=10_000,
            send_rate_policy="reject",
        )
    )
    await gateway.start()
    yield gateway
    await gateway.shutdown()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def canary(gateway: Gateway) -> AsyncIterator[Canary]:
    client = await StompTestClient.open(gateway.port)
    token = hs256(1, nickname="canary", rooms=[CANARY_ROOM])
    await client.connect("1.2", headers=[bearer(token)])
    await client.subscribe(f"/sub/chat/{CANARY_ROOM}")
    canary = Canary(client)
    canary.start()
    yield canary
    await canary.stop()
    await client.close()


# The cases.

Check = Callable[[StompTestClient], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Case:
    """
    What a client sends, and what it must get back.

    Attributes:
        data: WebSocket messages sent (bytes: text when UTF-8, else binary).
        connect: Whether the client first CONNECTs with a valid token.
        error: The ``message`` of the ERROR the client gets before the close (1002).
        details: A phrase of that ERROR's body.
        app_error: The reason on ``/user/queue/errors``; the session goes on.
        close_code: The WebSocket close the client gets, without an ERROR.
        check: Asserts what an accepted, harmless input led to.

    """

    data: tuple[bytes, ...]
    connect: bool = True
    error: str | None = None
    details: str = ""
    app_error: str | None = None
    close_code: int | None = None
    check: Check | None = None


async def echoed_as_henhen(client: StompTestClient) -> None:
    """The chat message was stamped with the token's member and nickname."""
    message = await client.expect(Command.MESSAGE)
    body = json.loads(message.body)
    assert (body["memberId"], body["nickname"], body["message"]) == (7, "henhen", "hi")


async def subscription_id_kept_whole(client: StompTestClient) -> None:
    """An escaped newline in a header stays inside the value, in and out."""
    await client.send_raw(send("/pub/chat/4", chat(memberId=7)))
    message = await client.expect(Command.MESSAGE)
    assert message.get("subscription") == "x\ndestination:/sub/chat/5"
    assert message.get("destination") == "/sub/chat/4"


def receipted_and_going_on(receipt: str) -> Check:
    """The frame was a no-op: its RECEIPT came, and the session goes on."""

    async def check(client: StompTestClient) -> None:
        await client.expect_receipt(receipt)
        assert await client.barrier() == []

    return check


def rate_limited(reason: str) -> Check:
    async def check(client: StompTestClient) -> None:
        messages = 0
        errors = 0
        while messages + errors < 150:
            frame = await client.expect(Command.MESSAGE)
            if frame.get("destination") == ERRORS:
                assert frame.get("message") == reason
                errors += 1
            else:
                messages += 1
        assert errors >= 40, (messages, errors)  # 100 at once, a few more as tokens refill

    return check


SUBSCRIBE_4 = frame_bytes("SUBSCRIBE", [("id", "s4"), ("destination", "/sub/chat/4")])
TEN_MIB = 10 * 2**20
GARBAGE = bytes(range(256)) * 8
HUGE = "9" * 5000  # digits

CASES: dict[str, Case] = {
    # Framing.
    "no-nul": Case((send("/pub/ping", "x" * 70_000)[:-1],), error="frame too large"),
    "huge-content-length": Case(
        (send("/pub/ping", "", ("content-length", "9" * 40)),), error="frame too large"
    ),
    "negative-content-length": Case(
        (send("/pub/ping", "", ("content-length", "-1")),), error="invalid content-length"
    ),
    "non-numeric-content-length": Case(
        (send("/pub/ping", "", ("content-length", "ten")),), error="invalid content-length"
    ),
    "content-length-without-nul": Case(
        (b"SEND\ndestination:/pub/ping\ncontent-length:2\n\nabc\0",), error="missing NUL"
    ),
    "header-without-colon": Case((b"SEND\ndestination /pub/ping\n\n\0",), error="malformed header"),
    "header-without-name": Case((b"SEND\n:/pub/ping\n\n\0",), error="malformed header"),
    "invalid-utf8-header": Case((b"SEND\ndestination:/pub/\xff\xfe\n\n\0",), error="invalid UTF-8"),
    "invalid-header-escape": Case(
        (b"SEND\ndestination:/pub/\\t\n\n\0",), error="invalid header escape"
    ),
    "unknown-command": Case((b"FETCH\n\n\0",), error="unknown command"),
    "lowercase-command": Case((b"send\ndestination:/pub/ping\n\n\0",), error="unknown command"),
    "binary-garbage": Case((GARBAGE,), error="unknown command"),
    "header-line-too-long": Case(
        (send("/pub/ping", "", ("x", "y" * 9000)),), error="header line too long"
    ),
    "ten-thousand-headers": Case(
        (send("/pub/ping", "", *[(f"h{i}", "v") for i in range(10_000)]),),
        error="too many headers",
    ),
    "ten-mib-frame-in-one-message": Case(
        (send("/pub/ping", b"x" * TEN_MIB),), close_code=1009
    ),  # over the WebSocket message limit: websockets closes with 1009 (message too big)
    "ten-mib-frame-in-pieces": Case(
        tuple(b"SEND\ndestination:/pub/ping\n\n" if i == 0 else b"x" * 65_536 for i in range(160)),
        error="frame too large",
    ),
    "one-mib-chat-message": Case(
        # Just under the 1 MiB WebSocket message limit, so the STOMP limit answers.
        (send("/pub/chat/4", chat(message="x" * (2**20 - 100))),),
        error="frame too large",
    ),
    # Session state.
    "send-before-connect": Case((send("/pub/ping"),), connect=False, error="not connected"),
    "second-connect": Case((connect_frame(bearer(TOKEN)),), error="already connected"),
    "server-frame": Case((b"MESSAGE\ndestination:/sub/x\n\n\0",), error="unexpected frame"),
    "subscribe-without-id": Case(
        (frame_bytes("SUBSCRIBE", [("destination", "/sub/chat/4")]),), error="missing header"
    ),
    "subscribe-without-destination": Case(
        (frame_bytes("SUBSCRIBE", [("id", "s")]),), error="missing header"
    ),
    "duplicate-subscription-id": Case(
        (SUBSCRIBE_4, frame_bytes("SUBSCRIBE", [("id", "s4"), ("destination", "/sub/pong")])),
        error="duplicate subscription id",
    ),
    "ack-unknown-id": Case((frame_bytes("ACK", [("id", "nope")]),), error="unknown ack id"),
    "nack-unknown-id": Case((frame_bytes("NACK", [("id", "nope")]),), error="unknown ack id"),
    "unsubscribe-unknown-id": Case(
        (frame_bytes("UNSUBSCRIBE", [("id", "nope"), ("receipt", "u")]),),
        check=receipted_and_going_on("u"),
    ),
    "commit-unknown-transaction": Case(
        (frame_bytes("COMMIT", [("transaction", "t")]),), error="unknown transaction"
    ),
    "begin-twice": Case(
        (frame_bytes("BEGIN", [("transaction", "t")]) * 2,), error="transaction already begun"
    ),
    "invalid-ack-mode": Case(
        (frame_bytes("SUBSCRIBE", [("id", "s"), ("destination", "/sub/x"), ("ack", "maybe")]),),
        error="invalid ack mode",
    ),
    # CONNECT.
    "unsupported-version": Case(
        (frame_bytes("CONNECT", [("accept-version", "2.0"), bearer(TOKEN)]),),
        connect=False,
        error="unsupported protocol version",
    ),
    "invalid-heart-beat": Case(
        (connect_frame(bearer(TOKEN), ("heart-beat", "soon")),),
        connect=False,
        error="invalid heart-beat header",
    ),
    "too-much-before-connect": Case(
        (b"\n" * 20_000,), connect=False, error="too much data before CONNECT"
    ),
    "byte-by-byte-connect": Case(
        tuple(bytes([b]) for b in connect_frame(bearer(TOKEN))),
        connect=False,
        error="connect timeout",
    ),
    # Authentication.
    "no-token": Case(
        (connect_frame(),), connect=False, error="authentication failed", details="no token"
    ),
    "invalid-jwt": Case(
        (connect_frame(bearer("not.a.jwt")),),
        connect=False,
        error="authentication failed",
        details="invalid token",
    ),
    "expired-jwt": Case(
        (connect_frame(bearer(hs256(7, lifetime=-60))),),
        connect=False,
        error="authentication failed",
        details="Signature has expired",
    ),
    "forged-jwt": Case(
        (connect_frame(bearer(hs256(7, secret="guessed-secret-guessed-secret-guessed"))),),
        connect=False,
        error="authentication failed",
        details="Signature verification failed",
    ),
    "jwt-member-5000-digits": Case(
        (connect_frame(bearer(hs256("9" * 5000))),),
        connect=False,
        error="authentication failed",
        details="claim sub is not an integer member id",
    ),
    "unsigned-jwt": Case(
        (connect_frame(bearer(TOKEN.rsplit(".", 1)[0] + ".")),),
        connect=False,
        error="authentication failed",
        details="invalid token",
    ),
    # Impersonation and room authorization.
    "member-7-sends-as-8": Case(
        (send("/pub/chat/4", chat(memberId=8)),),
        app_error="memberId does not match the authenticated member",
    ),
    "member-id-omitted": Case(
        (send("/pub/chat/4", chat(nickname="evil")),), check=echoed_as_henhen
    ),
    "subscribe-room-not-in-token": Case(
        (frame_bytes("SUBSCRIBE", [("id", "s5"), ("destination", "/sub/chat/5")]),),
        app_error="not a member of room 5",
    ),
    "send-room-not-in-token": Case(
        (send("/pub/chat/5", chat(memberId=7)),), app_error="not a member of room 5"
    ),
    "header-injection-escaped-newline": Case(
        (
            frame_bytes(
                "SUBSCRIBE",
                [("id", "x\\ndestination\\c/sub/chat/5"), ("destination", "/sub/chat/4")],
            ),
        ),
        check=subscription_id_kept_whole,
    ),
    # Destinations and bodies.
    "send-to-sub": Case(
        (send("/sub/chat/4", chat()),),
        app_error="SEND to broker destination '/sub/chat/4' is not allowed",
    ),
    "room-negative": Case(
        (send("/pub/chat/-1", chat()),),
        app_error="invalid room id '-1': expected a positive integer",
    ),
    "room-abc": Case(
        (send("/pub/chat/abc", chat()),),
        app_error="invalid room id 'abc': expected a positive integer",
    ),
    "room-2-70": Case(
        (send(f"/pub/chat/{2**70}", chat()),),
        app_error=f"invalid room id '{2**70}': too large",
    ),
    # Client-controlled numbers and nesting, far past Python's 4,300-digit int() limit.
    "room-5000-digits": Case(
        (send(f"/pub/chat/{HUGE}", chat()),),
        app_error=f"invalid room id '{HUGE[:40]}': too large",
    ),
    "subscribe-room-5000-digits": Case(
        (frame_bytes("SUBSCRIBE", [("id", "h"), ("destination", f"/sub/chat/{HUGE}")]),),
        app_error=f"invalid room id '{HUGE[:40]}': too large",
    ),
    "member-id-string-5000-digits": Case(
        (send("/pub/chat/4", chat(memberId=HUGE)),),
        app_error="memberId must be a 64-bit integer",
    ),
    "member-id-5000-digits-beside-nan": Case(
        # NaN sends the body past orjson to the standard library's parser.
        (send("/pub/chat/4", b'{"message":"hi","memberId":%s,"x":NaN}' % HUGE.encode()),),
        app_error="memberId must be a 64-bit integer",
    ),
    "file-id-5000-digits-beside-nan": Case(
        (send("/pub/chat/4", b'{"fileId":%s,"fileName":"f","x":NaN}' % HUGE.encode()),),
        app_error="fileId must be a 64-bit integer or a string",
    ),
    "json-3000-deep": Case(
        (send("/pub/chat/4", b'{"message":"hi","x":' + b"[" * 3000 + b"]" * 3000 + b"}"),),
        app_error="body is not valid JSON: nested deeper than 512 levels",
    ),
    "json-not-an-object": Case(
        (send("/pub/chat/4", b"[1, 2, 3]"),), app_error="body is not a JSON object"
    ),
    "not-json": Case(
        (send("/pub/chat/4", b"{memberId: 7"),),
        app_error="body is not valid JSON: Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1)",
    ),
    "lone-surrogate": Case(
        (send("/pub/chat/4", b'{"message": "\\ud800"}'),),
        app_error="message cannot be encoded: str is not valid UTF-8: surrogates not allowed",
    ),
    "message-over-max-length": Case(
        (send("/pub/chat/4", chat(message="x" * 10_001)),),
        app_error="message is longer than 10000 characters",
    ),
    "send-flood": Case(
        (b"".join([send("/pub/chat/4", chat())] * 150),),
        check=rate_limited("rate limit exceeded: at most 50 SENDs per second"),
    ),
    "too-many-subscriptions": Case(
        tuple(
            frame_bytes("SUBSCRIBE", [("id", f"s{i}"), ("destination", f"/sub/x{i}")])
            for i in range(100)  # the errors subscription is the first
        ),
        app_error="too many subscriptions: at most 100 per session",
    ),
}


async def open_case_client(gateway: Gateway, case: Case) -> StompTestClient:
    client = await StompTestClient.open(gateway.port, max_size=None)
    if case.connect:
        await client.connect("1.2", headers=[bearer(TOKEN)])
        await client.subscribe(ERRORS, "errors")
        if case.check is not None:
            await client.subscribe("/sub/chat/4", "s4-check")
    return client


async def send_all(client: StompTestClient, data: tuple[bytes, ...], pace: float) -> None:
    with contextlib.suppress(Exception):  # the server may close midway: that is the point
        for message in data:
            await client.send_raw(message)
            if pace:
                await asyncio.sleep(pace)


@pytest.mark.parametrize("name", CASES)
async def test_bad_input(gateway: Gateway, canary: Canary, name: str) -> None:
    case = CASES[name]
    before = canary.received
    client = await open_case_client(gateway, case)
    pace = 0.1 if name == "byte-by-byte-connect" else 0.0
    sender = asyncio.create_task(send_all(client, case.data, pace))
    try:
        if case.error is not None:
            frames, code = await client.read_until_closed(timeout=CONNECT_TIMEOUT + 10)
            assert [f.command for f in frames] == [Command.ERROR], frames
            assert frames[0].get("message") == case.error
            assert case.details in frames[0].body.decode()
            assert code == 1002
        elif case.close_code is not None:
            frames, code = await client.read_until_closed()
            assert frames == []
            assert code == case.close_code
        elif case.app_error is not None:
            await sender
            error = await first_error(client)
            assert error.get("message") == case.app_error
            assert error.body.decode() == case.app_error
            assert await client.barrier() == []  # the session goes on
        else:
            assert case.check is not None
            await sender
            await case.check(client)
    finally:
        await _cancel(sender)
        if client.ws.state is not State.CLOSED:  # closing twice upsets the client
            await client.close()
    await canary.advance(before + 2)  # other clients are still served
    assert canary.problems == []


async def first_error(client: StompTestClient) -> Frame:
    """The first MESSAGE on the errors queue; any other frame fails the case."""
    frame = await client.expect(Command.MESSAGE)
    assert frame.get("destination") == ERRORS, frame
    return frame


async def test_the_table_has_at_least_30_cases() -> None:
    assert len(CASES) >= 30


async def test_the_canary_lost_nothing(gateway: Gateway, canary: Canary) -> None:
    """Runs last: every message the canary sent came back once, in order."""
    await canary.stop()
    assert canary.problems == []
    assert canary.sent > 0
    assert canary.received == canary.sent
    async with asyncio.timeout(10):
        while len(gateway.connections) > 1:  # only the canary is left
            await asyncio.sleep(0.01)
