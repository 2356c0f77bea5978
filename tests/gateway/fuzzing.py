"""
Random hostile sessions against a live gateway, for a time budget.

Each round opens a connection, sends a random stream of frame fragments (valid
frames, broken ones, raw bytes) in random pieces, and reads what comes back:
every frame must parse, an ERROR must carry a documented ``message`` and be
followed by the close, and a canary session must still answer a ping. Used with
a few seconds by ``tests/gateway/test_fuzz.py`` and for as long as asked by
``fuzz/gateway.py``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import random
import time

from protocol import Command

from .stomp_client import Closed, StompTestClient, frame_bytes
from .tokens import bearer, hs256

__all__ = ["DOCUMENTED_ERRORS", "FuzzReport", "fuzz_gateway"]

# Every ERROR message the gateway may send (README, "Errors: what the client sees").
DOCUMENTED_ERRORS = frozenset(
    {
        "already connected",
        "authentication failed",
        "connect timeout",
        "duplicate subscription id",
        "frame too large",
        "header line too long",
        "invalid UTF-8",
        "invalid ack mode",
        "invalid content-length",
        "invalid header escape",
        "invalid heart-beat header",
        "invalid receipt header",
        "invalid subscription id",
        "malformed header",
        "missing NUL",
        "missing header",
        "not connected",
        "session closed",
        "too many headers",
        "too much data before CONNECT",
        "transaction already begun",
        "transaction too large",
        "unexpected frame",
        "unknown ack id",
        "unknown command",
        "unknown transaction",
        "unsupported protocol version",
    }
)

TOKEN = hs256(7, nickname="fuzz", rooms=[4])
PIECES = [
    frame_bytes("CONNECT", [("accept-version", "1.2"), bearer(TOKEN)]),
    frame_bytes("CONNECT", [("accept-version", "1.0,1.1"), ("passcode", TOKEN)]),
    frame_bytes("CONNECT", [("accept-version", "1.2"), bearer("x.y.z")]),
    frame_bytes("SUBSCRIBE", [("id", "a"), ("destination", "/sub/chat/4")]),
    frame_bytes("SUBSCRIBE", [("id", "b"), ("destination", "/sub/chat/5")]),
    frame_bytes("SUBSCRIBE", [("id", "e"), ("destination", "/user/queue/errors")]),
    frame_bytes("SUBSCRIBE", [("id", "c"), ("destination", "/sub/pong"), ("ack", "client")]),
    frame_bytes("SEND", [("destination", "/pub/chat/4")], b'{"message":"hi"}'),
    frame_bytes("SEND", [("destination", "/pub/chat/4")], b'{"memberId":8,"message":"x"}'),
    frame_bytes("SEND", [("destination", "/pub/ping")], b'{"message":"ping"}'),
    frame_bytes("SEND", [("destination", "/pub/chat/4"), ("transaction", "t")], b"[]"),
    frame_bytes("ACK", [("id", "0")]),
    frame_bytes("BEGIN", [("transaction", "t")]),
    frame_bytes("COMMIT", [("transaction", "t")]),
    frame_bytes("ABORT", [("transaction", "t")]),
    frame_bytes("UNSUBSCRIBE", [("id", "a")]),
    frame_bytes("DISCONNECT", [("receipt", "bye")]),
    b"\n",
    b"\r\n",
    b"\0",
    b"SEND\n",
    b"content-length:5\n",
    b"content-length:-3\n",
    b"destination:/pub/chat/4\n",
    b"\n\n",
    b"\\c\\n\\t",
    b"\xff\xfe",
    b"MESSAGE\n\n\0",
    b"x" * 1000,
]


@dataclasses.dataclass
class FuzzReport:
    """What the rounds saw."""

    rounds: int = 0
    frames: int = 0
    errors: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    closes: collections.Counter[int | None] = dataclasses.field(default_factory=collections.Counter)


async def fuzz_gateway(port: int, seconds: float, seed: int) -> FuzzReport:
    """Run rounds against the gateway on ``port`` for ``seconds``; fail on any surprise."""
    rng = random.Random(seed)
    report = FuzzReport()
    canary = await StompTestClient.open(port)
    await canary.connect("1.2", headers=[bearer(TOKEN)])
    await canary.subscribe("/sub/pong", "pong")
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            # Mostly after a valid CONNECT, so the rounds reach past it.
            start = PIECES[0] if rng.random() < 0.7 else b""
            stream = start + b"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12)))
            await _round(port, stream, rng, report)
            await canary.send("SEND", [("destination", "/pub/ping")], b"ping")
            assert (await canary.expect(Command.MESSAGE)).body == b"pong"
            report.rounds += 1
    finally:
        await canary.close()
    return report


async def _round(port: int, stream: bytes, rng: random.Random, report: FuzzReport) -> None:
    client = await StompTestClient.open(port, max_size=None)
    try:
        cuts = sorted({0, len(stream), *(rng.randrange(len(stream) + 1) for _ in range(3))})
        with contextlib.suppress(Exception):  # the gateway may close midway
            for start, end in itertools.pairwise(cuts):
                await client.send_raw(stream[start:end], binary=rng.random() < 0.2)
        error_seen = False
        while True:
            try:
                frame = await client.read_frame(timeout=0.3)
            except TimeoutError:
                break  # the session goes on
            except Closed as exc:
                report.closes[exc.code] += 1
                break
            report.frames += 1
            assert not error_seen, f"a frame after ERROR: {frame}"
            if frame.command is Command.ERROR:
                message = frame.get("message", "")
                assert message in DOCUMENTED_ERRORS, f"undocumented ERROR {message!r}"
                report.errors[message] += 1
                error_seen = True
    finally:
        await client.close()
