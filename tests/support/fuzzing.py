"""
Random hostile sessions against a live gateway, for a time budget.

Each round opens a connection, sends a random stream of frame fragments (valid
frames, broken ones, raw bytes) in random pieces, and reads what comes back:
every frame must parse, an ERROR must carry a documented ``message`` and be
followed by the close, and a canary session must still answer a ping. Used with
a few seconds by ``tests/e2e/test_fuzz.py`` and for as long as asked by
``fuzz/gateway.py``.

Below, hypothesis strategies of hostile values (numbers past ``int()``'s
4,300 digits, JSON nested past any parser's recursion, NUL/CR/LF, invalid
UTF-8, huge headers) put in the places a client controls on each surface,
STOMP over WebSocket, SockJS and HTTP, and the drivers that send one to a
live gateway and return what came back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import enum
import itertools
import random
import time
import urllib.parse

from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from protocol import Command
from tests.support.stomp_client import Closed, StompTestClient, frame_bytes
from tests.support.tokens import bearer, hs256

__all__ = [
    "DOCUMENTED_ERRORS",
    "HOSTILE_VALUES",
    "SERVICE_TOKEN",
    "FuzzReport",
    "Outcome",
    "Surface",
    "fuzz_gateway",
    "hostile_inputs",
    "send_hostile",
]

# Every ERROR message the gateway may send (docs/clients.md, "Errors: what the client sees").
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


# Hostile values, and the places a client puts them.


def _digits(sign: str, zeros: int, nines: int) -> bytes:
    return (sign + "0" * zeros + "9" * nines).encode()


def _nested(depth: int, brackets: tuple[str, str]) -> bytes:
    opening, closing = brackets
    return (opening * depth + "1" + closing * depth).encode()


HOSTILE_VALUES: st.SearchStrategy[bytes] = st.one_of(
    # Numbers past int()'s 4,300 digits, and short ones behind 4,400 zeros.
    st.builds(
        _digits,
        st.sampled_from(["", "-", "+"]),
        st.sampled_from([0, 4_400]),
        st.integers(4_301, 6_000) | st.integers(1, 25),
    ),
    # JSON nested past orjson's 1,024 levels and the standard library's recursion.
    st.builds(_nested, st.integers(500, 4_000), st.sampled_from([("[", "]"), ('{"a":', "}")])),
    # Brackets inside a JSON string: no nesting at all.
    st.integers(500, 4_000).map(lambda count: b'"' + b"[" * count + b'"'),
    # Control characters, escapes and a lone surrogate.
    st.text(st.sampled_from('\0\r\n:\\{}[]"9a\ud800'), max_size=40).map(
        lambda text: text.encode("utf-8", "surrogatepass")
    ),
    # Invalid UTF-8: a stray byte, an overlong NUL, a surrogate, past U+10FFFF, a continuation.
    st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80abc"]),
    # Past header lines, frames and request heads.
    st.integers(8_000, 70_000).map(lambda size: b"x" * size),
)


class Surface(enum.Enum):
    """Where a hostile value arrives."""

    STOMP = "STOMP over WebSocket"
    SOCKJS = "SockJS over WebSocket"
    HTTP = "HTTP"


SERVICE_TOKEN = "fuzz-service-token"
_CHAT = b'{"message":"hi"}'
_CONNECT = b"CONNECT\naccept-version:1.2\nAuthorization:Bearer " + TOKEN.encode() + b"\n\n\0"
_DISCONNECT = b"DISCONNECT\nreceipt:bye\n\n\0"
_POST = b"POST /v1/api/chat/{q}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
_POST += SERVICE_TOKEN.encode() + b"\r\nContent-Length: {len}\r\n\r\n{body}"

# Where each surface takes a client's value: {v} as is, {q} percent-encoded.
# A STOMP template not starting with CONNECT is sent in a session CONNECTed
# with TOKEN; a SockJS one in a SockJS session CONNECTed so. In an HTTP
# template {body} is the body of the Content-Length {len}.
_PLACES: dict[Surface, tuple[bytes, ...]] = {
    Surface.STOMP: (
        b"CONNECT\naccept-version:1.2\nheart-beat:{v},{v}\n\n\0",
        b"CONNECT\naccept-version:{v}\n\n\0",
        b"CONNECT\naccept-version:1.2\nAuthorization:Bearer {v}\n\n\0",
        b"SEND\ndestination:/pub/chat/{v}\n\n" + _CHAT + b"\0",
        b"SUBSCRIBE\nid:h\ndestination:/sub/chat/{v}\n\n\0",
        b'SEND\ndestination:/pub/chat/4\n\n{"message":"hi","memberId":{v}}\0',
        b'SEND\ndestination:/pub/chat/4\n\n{"fileId":{v},"fileName":"f","x":NaN}\0',
        b'SEND\ndestination:/pub/chat/4\n\n{"message":{v}}\0',
        b"SEND\ndestination:/pub/chat/4\n\n{v}\0",
        b"SEND\ndestination:/pub/chat/4\nreceipt:{v}\n\n" + _CHAT + b"\0",
        b"SEND\ndestination:/pub/chat/4\ncontent-length:{v}\n\n" + _CHAT + b"\0",
        b"SEND\ndestination:/pub/chat/4\nx-hostile:{v}\n\n" + _CHAT + b"\0",
        b"SUBSCRIBE\nid:{v}\ndestination:/sub/chat/4\n\n\0",
        b"BEGIN\ntransaction:{v}\n\n\0",
    ),
    Surface.SOCKJS: (
        b"{v}",
        b'["{v}"]',
        b"[{v}]",
        b'["SEND\\ndestination:/pub/chat/{v}\\n\\n{}\\u0000"]',
        b'["SEND\\ndestination:/pub/chat/4\\n\\n{v}\\u0000"]',
    ),
    Surface.HTTP: (
        b"GET /v1/api/chat/{q} HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/api/chat/{v} HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/api/chat/4?limit={q} HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/api/chat/4?before={q} HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/api/chat/4/messages?after={q} HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/api/chat/{q}/presence HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/api/chat/last/message?rooms=1,{q} HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/api/chat/last/connect?memberId={q} HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /ws/info?t={q} HTTP/1.1\r\nHost: x\r\nOrigin: {v}\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Hostile: {v}\r\n\r\n",
        _POST.replace(b"{q}", b"4").replace(b"{body}", b"{v}"),
        _POST.replace(b"{q}", b"4").replace(b"{body}", b'{"memberId":{v},"nickname":"n"}'),
        _POST.replace(b"{body}", _CHAT),
        # Past the head, a body longer than any Content-Length the gateway reads.
        _POST.replace(b"{q}", b"4").replace(b"{len}", b"{v}").replace(b"{body}", b"{70 KB}"),
    ),
}


_SESSIONS = itertools.count()  # SockJS session ids


def hostile_inputs(surface: Surface) -> st.SearchStrategy[tuple[bytes, bytes]]:
    """A template of ``surface`` and the value to put in it."""
    return st.tuples(st.sampled_from(_PLACES[surface]), HOSTILE_VALUES)


@dataclasses.dataclass
class Outcome:
    """What came back: the WebSocket messages and close code, or the HTTP status."""

    messages: list[str | bytes] = dataclasses.field(default_factory=list)
    close_code: int | None = None
    status: int | None = None


async def send_hostile(port: int, surface: Surface, template: bytes, value: bytes) -> Outcome:
    """Send ``template`` holding ``value`` to the gateway on ``port``; return what came back."""
    data = template.replace(b"{q}", urllib.parse.quote_from_bytes(value, safe="").encode())
    data = data.replace(b"{v}", value).replace(b"{70 KB}", b"x" * 70_000)
    if surface is Surface.HTTP:
        return await _http(port, data)
    return await _websocket(port, surface, data)


async def _http(port: int, request: bytes) -> Outcome:
    head, _, body = request.partition(b"\r\n\r\n")
    request = head.replace(b"{len}", str(len(body)).encode()) + b"\r\n\r\n" + body
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        with contextlib.suppress(ConnectionError):  # answered before the whole body
            writer.write(request)
            await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    version, _, rest = response.partition(b" ")
    return Outcome(status=int(rest[:3]) if version == b"HTTP/1.1" else None)


async def _websocket(port: int, surface: Surface, data: bytes) -> Outcome:
    sockjs = surface is Surface.SOCKJS
    path = f"/ws/000/{next(_SESSIONS)}/websocket" if sockjs else "/ws"
    async with connect(f"ws://127.0.0.1:{port}{path}", max_size=None, close_timeout=2) as ws:
        if sockjs:
            assert await ws.recv() == "o"
        if sockjs or not data.startswith(b"CONNECT"):
            await ws.send(_sockjs(_CONNECT) if sockjs else _CONNECT.decode())
            assert "CONNECTED" in str(await ws.recv(5))
        outcome = Outcome()
        with contextlib.suppress(ConnectionClosed, TimeoutError):  # closed, or the session goes on
            await _send(ws, data)
            await _send(ws, _sockjs(_DISCONNECT).encode() if sockjs else _DISCONNECT)
            while True:
                outcome.messages.append(await asyncio.wait_for(ws.recv(), 0.5))
        if ws.protocol.close_rcvd is not None:
            outcome.close_code = ws.protocol.close_rcvd.code
        return outcome


def _sockjs(frame: bytes) -> str:
    return '["' + frame.decode().replace("\n", "\\n").replace("\0", "\\u0000") + '"]'


async def _send(ws: ClientConnection, data: bytes) -> None:
    try:
        await ws.send(data.decode())
    except UnicodeDecodeError:
        await ws.send(data)
