"""
Load generator worker: many WebSocket clients in one process, raw asyncio.

Not run by hand: ``bench/suite.py`` starts one per load-generator core, pinned
with ``taskset``, gives it a JSON spec as its argument and talks to it over
stdin/stdout:

1. it opens its connections (STOMP CONNECT and SUBSCRIBE with receipts, or a
   bare WebSocket for the transport floor) and prints ``{"ready": ...}``;
2. on a ``go`` line it publishes (worker 0 only), receives, or holds idle
   connections, then prints one JSON line with its counts, its latency
   histogram and its own CPU share.

Each client is an :class:`asyncio.Protocol` speaking just enough RFC 6455 to be
cheap: no per-message task, future or object, deliveries are counted by
searching the payload for the marker every published text carries
(``~~<seq>:<monotonic ns>:``; CLOCK_MONOTONIC is system-wide on Linux, so the
publisher's clock is every subscriber's clock).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import gc
import json
import os
import re
import struct
import sys
import time
import typing
from collections.abc import Callable
from typing import Any

MARK = re.compile(rb"~~(\d+):(\d+):")
MARKER = b"~~"  # never in a header (RabbitMQ's message-ids hold "@@")
TEXT_BYTES = 100  # the chat message text
# RFC 6455 §5.3: client frames are masked. An all-zero key is a valid key and
# leaves the payload as it is, so sending costs no XOR.
ZERO_MASK = b"\0\0\0\0"
OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


def ws_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One masked, final client frame (RFC 6455 §5.2)."""
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return head + ZERO_MASK + payload


def stomp(command: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = "".join(f"{name}:{value}\n" for name, value in headers.items())
    return f"{command}\n{lines}\n".encode() + body + b"\0"


def chat_text(seq: int) -> bytes:
    text = f"~~{seq}:{time.monotonic_ns()}:".encode()
    return text + b"x" * (TEXT_BYTES - len(text))


class Dialect:
    """What one target speaks: the floor's bare messages, or STOMP to a room."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.stomp = target != "floor"

    def connect(self, heartbeat_ms: int) -> bytes:
        headers = {"accept-version": "1.2", "heart-beat": f"{heartbeat_ms},{heartbeat_ms}"}
        if self.target == "rabbitmq":
            headers |= {"host": "/", "login": "guest", "passcode": "guest"}
        else:
            headers["host"] = "localhost"
        return stomp("CONNECT", headers)

    def subscribe(self, room: int, receipt: str, subscription: str = "0") -> bytes:
        destination = f"/topic/room.{room}" if self.target == "rabbitmq" else f"/sub/chat/{room}"
        headers = {"id": subscription, "destination": destination, "receipt": receipt}
        return stomp("SUBSCRIBE", headers)

    def publish(self, room: int, seq: int, receipt: bool = False) -> bytes:
        text = chat_text(seq)
        if not self.stomp:
            return text
        if self.target == "rabbitmq":
            headers = {"destination": f"/topic/room.{room}", "content-type": "text/plain"}
            return stomp("SEND", headers, text)
        body = b'{"memberId":1,"nickname":"bench","message":"' + text + b'"}'
        headers = {"destination": f"/pub/chat/{room}", "content-type": "application/json"}
        if receipt:
            headers["receipt"] = str(seq)
        return stomp("SEND", headers, body)


class Client(asyncio.Protocol):
    """One WebSocket client connection; counts the marked texts it receives."""

    def __init__(self, path: str, subprotocol: str | None, latency: bool) -> None:
        self.path = path
        self.subprotocol = subprotocol
        self.latency = latency
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.open = False
        self.closed = False
        self.waiting: tuple[bytes, asyncio.Future[None]] | None = None
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.received = 0
        self.last_ns = 0
        self.errors = 0
        self.beats = 0  # heart-beats from the server
        self.seen: set[int] = set()
        self.histogram: collections.Counter[int] | None = None
        # A publisher's SENDs, the RECEIPTs that came back, and what waits for them.
        self.sent = 0
        self.receipts = 0
        self.receipt_ns = 0
        self.window: tuple[int, asyncio.Future[None]] | None = None

    # Transport.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)  # uvloop's is no subclass
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path} HTTP/1.1",
            "Host: 127.0.0.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.subprotocol:
            lines.append(f"Sec-WebSocket-Protocol: {self.subprotocol}")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError("closed during the handshake"))
        if self.waiting is not None and not self.waiting[1].done():
            self.waiting[1].set_exception(ConnectionError("closed"))

    def data_received(self, data: bytes) -> None:
        if not self.open:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[: self.buffer.find(b"\r\n")])
            data = bytes(self.buffer[end + 4 :])
            self.buffer = bytearray()
            if b" 101 " not in status:
                self.handshake.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            self.open = True
            self.handshake.set_result(None)
        elif self.buffer:
            self.buffer += data
            data = bytes(self.buffer)
        offset, size = 0, len(data)
        # The hot path: count the marks in place, without copying the payload.
        counting = not self.latency and self.waiting is None
        while size - offset >= 2:
            opcode, length = data[offset] & 0x0F, data[offset + 1] & 0x7F
            start = offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                length = int.from_bytes(data[start : start + 2], "big")
                start += 2
            elif length == 127:
                if size - offset < 10:
                    break
                length = int.from_bytes(data[start : start + 8], "big")
                start += 8
            end = start + length
            if end > size:
                break
            if counting and opcode == OP_TEXT and (marks := data.count(MARKER, start, end)):
                self.received += marks
                self.last_ns = time.monotonic_ns()
            else:
                self.on_frame(opcode, data[start:end])
            offset = end
        self.buffer = bytearray(data[offset:]) if offset < size else bytearray()

    def on_frame(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            self.send(payload, OP_PONG)
        elif opcode == OP_CLOSE:
            if not self.closed:
                self.send(payload[:2], OP_CLOSE)
                self.closed = True
        elif opcode != OP_PONG:  # text, binary (servers here never fragment)
            self.on_message(payload)

    def on_message(self, payload: bytes) -> None:
        if payload in (b"\n", b"\r\n"):  # STOMP 1.2 §Heart-beating
            self.beats += 1
            return
        marks = payload.count(MARKER)
        if marks:
            self.received += marks
            self.last_ns = time.monotonic_ns()
            if self.latency:
                self.measure(payload)
        if payload.startswith(b"ERROR") or b"\0ERROR\n" in payload:
            self.errors += 1
        if receipts := payload.count(b"RECEIPT\n"):
            self.on_receipts(receipts)
        if self.waiting is not None and self.waiting[0] in payload:
            future = self.waiting[1]
            self.waiting = None
            future.set_result(None)

    def on_receipts(self, count: int) -> None:
        self.receipts += count
        self.receipt_ns = time.monotonic_ns()
        if self.window is not None and self.sent - self.receipts <= self.window[0]:
            future = self.window[1]
            self.window = None
            future.set_result(None)

    async def credit(self, limit: int, timeout: float = 30) -> None:
        """Wait until at most ``limit`` SENDs await their RECEIPT."""
        if self.sent - self.receipts <= limit:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.window = (limit, future)
        await asyncio.wait_for(future, timeout)

    def measure(self, payload: bytes) -> None:
        assert self.histogram is not None
        now = self.last_ns
        for match in MARK.finditer(payload):
            self.seen.add(int(match[1]))
            self.histogram[bucket((now - int(match[2])) // 1000)] += 1

    def send(self, payload: bytes, opcode: int = OP_TEXT) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_frame(payload, opcode))

    async def request(self, payload: bytes, token: bytes, timeout: float = 30) -> None:
        """Send ``payload`` and wait for a message containing ``token``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting = (token, future)
        self.send(payload)
        await asyncio.wait_for(future, timeout)


def bucket(micros: int) -> int:
    """Round to 7 significant bits (under 1% error), so histograms stay small."""
    shift = micros.bit_length() - 7
    return (micros >> shift) << shift if shift > 0 else micros


# The worker.


class Worker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.dialect = Dialect(spec["target"])
        self.subscribers: list[Client] = []
        self.publishers: list[Client] = []
        self.histogram: collections.Counter[int] = collections.Counter()
        self.beating: list[Client] = []  # STOMP clients CONNECTED, in order

    async def open(self, port: int, subscribe_to: list[int]) -> Client:
        loop = asyncio.get_running_loop()
        spec = self.spec
        subprotocol = "v12.stomp" if self.dialect.stomp else None
        latency = bool(spec.get("latency"))

        def factory() -> Client:
            return Client(spec["path"], subprotocol, latency)

        _, client = await loop.create_connection(factory, "127.0.0.1", port)
        client.histogram = self.histogram
        await asyncio.wait_for(client.handshake, 30)
        if self.dialect.stomp:
            await client.request(self.dialect.connect(spec.get("heartbeat_ms", 0)), b"CONNECTED")
            self.beating.append(client)
            for number, room in enumerate(subscribe_to):
                frame = self.dialect.subscribe(room, f"s{number}", str(number))
                await client.request(frame, f"receipt-id:s{number}\n".encode())
        return client

    def subscriptions(self) -> list[tuple[int, list[int]]]:
        """Each subscriber's port and rooms: ``subscriptions``, else one room each on one port."""
        spec = self.spec
        if "subscriptions" in spec:
            return [(port, rooms) for port, rooms in spec["subscriptions"]]
        # Subscribers and publishers may be on different instances (Kafka).
        port = spec.get("subscribe_port", spec["port"])
        return [(port, [room]) for room in spec["rooms"]]

    async def setup(self) -> None:
        """Open the connections; those CONNECTED send their heart-beats meanwhile."""
        spec = self.spec
        semaphore = asyncio.Semaphore(100)  # connections being opened at once

        async def one(port: int, rooms: list[int]) -> Client:
            async with semaphore:
                return await self.open(port, rooms)

        subscriptions = self.subscriptions()
        self.subscribers = list(await asyncio.gather(*(one(*s) for s in subscriptions)))
        publish = spec.get("publish")
        if publish:
            ports = spec.get("publish_ports") or [spec["port"]]
            for number in range(publish["publishers"]):
                self.publishers.append(await self.open(ports[number % len(ports)], []))

    async def run(self, go_ns: int) -> dict[str, Any]:
        cpu0, wall0 = time.process_time(), time.monotonic()
        beats = sum(c.beats for c in self.subscribers)
        if self.spec.get("hold_s"):
            await asyncio.sleep(self.spec["hold_s"])  # idle, but for the heart-beats
            sent = send_first = send_last = 0
        else:
            publishing = asyncio.create_task(self.publish()) if self.publishers else None
            await self.settle()
            sent, send_first, send_last = await publishing if publishing else (0, 0, 0)
            await self.receipted()
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        per_sub = self.per_sub()
        lost = sum(e - min(e, c.received) for c, e in zip(self.subscribers, per_sub, strict=True))
        return {
            "connections": len(self.subscribers),
            "deliveries": sum(c.received for c in self.subscribers),
            "expected": sum(per_sub),
            "lost": lost,
            "unique": sum(len(c.seen) for c in self.subscribers),
            "errors": sum(c.errors for c in [*self.subscribers, *self.publishers]),
            "closed": sum(c.closed for c in [*self.subscribers, *self.publishers]),
            "server_beats": sum(c.beats for c in self.subscribers) - beats,
            "first_ns": go_ns,
            "last_ns": max((c.last_ns for c in self.subscribers), default=0),
            "sent": sent,
            "send_first_ns": send_first,
            "send_last_ns": send_last,
            "receipts": sum(c.receipts for c in self.publishers),
            "receipt_last_ns": max((c.receipt_ns for c in self.publishers), default=0),
            "histogram": dict(self.histogram),
            "cpu_s": round(cpu, 3),
            "wall_s": round(wall, 3),
        }

    def per_sub(self) -> list[int]:
        """Messages each subscriber should get: rooms are published round-robin."""
        publish = self.spec["all_publish"]
        if not publish:
            return [0] * len(self.subscribers)
        rooms: list[int] = publish["rooms"]
        count = collections.Counter(rooms[seq % len(rooms)] for seq in range(publish["messages"]))
        return [sum(count[room] for room in joined) for _, joined in self.subscriptions()]

    def expected(self) -> int:
        return sum(self.per_sub())

    async def publish(self) -> tuple[int, int, int]:
        """
        Send the messages: a burst, or open loop at a fixed rate; with a
        ``window``, a burst that keeps at most that many SENDs per publisher
        awaiting their RECEIPT (with ``receipts``: every SEND asks for one).
        """
        publish = self.spec["publish"]
        rooms, total, rate = publish["rooms"], publish["messages"], publish["rate"]
        receipts, window = publish.get("receipts", False), publish.get("window", 0)
        publishers = self.publishers
        first = time.monotonic_ns()
        sent = 0
        while sent < total:
            if rate:
                due = min(total, int((time.monotonic_ns() - first) * rate / 1e9) + 1)
            else:
                due = min(total, sent + 50)
            for seq in range(sent, due):
                publisher = publishers[seq % len(publishers)]
                if window and publisher.sent - publisher.receipts >= window:
                    # Woken when half the window is free: fewer, fuller bursts.
                    await publisher.credit(window // 2)
                publisher.send(self.dialect.publish(rooms[seq % len(rooms)], seq, receipts))
                publisher.sent += 1
            sent = due
            await asyncio.sleep(0.001 if rate else 0)
        return sent, first, time.monotonic_ns()

    async def receipted(self) -> None:
        """Until every SEND asking for a RECEIPT has it, or none came for ``settle_s``."""
        publish = self.spec.get("publish")
        if not publish or not publish.get("receipts"):
            return
        await until_counted(
            lambda: sum(c.receipts for c in self.publishers),
            publish["messages"],
            self.spec["settle_s"],
        )

    async def settle(self) -> None:
        """Until every subscriber has its messages, or nothing came for ``settle_s``."""
        publish = self.spec["all_publish"]
        # Open loop: deliveries may only start after the whole schedule.
        schedule = publish["messages"] / publish["rate"] if publish and publish["rate"] else 0.0
        await until_counted(
            lambda: sum(c.received for c in self.subscribers),
            self.expected(),
            self.spec["settle_s"],
            grace=schedule,
        )

    async def heartbeats(self) -> None:
        """
        Every CONNECTED client sends its heart-beat on time, from the CONNECTED
        frame on (STOMP 1.2 §Heart-beating: an EOL), not only once all are set
        up: opening 10,000 connections takes longer than a server waits for
        the first beats. Spread over the interval in 100 slices; a client
        appended to ``beating`` is in the next round of its slice.
        """
        interval = self.spec.get("heartbeat_ms", 0) / 1000
        if not interval or not self.dialect.stomp:
            return
        slices = 100
        index = 0
        while True:
            for client in self.beating[index::slices]:
                client.send(b"\n")
            index = (index + 1) % slices
            await asyncio.sleep(interval / slices)


async def until_counted(
    count: Callable[[], int], target: int, idle: float, grace: float = 0.0
) -> None:
    """
    Until ``count()`` reaches ``target``, or stays the same for ``idle``
    seconds (after the first ``grace`` seconds, which count as progress).
    """
    total, progress = -1, time.monotonic() + grace
    while (now_total := count()) < target:
        if now_total != total:
            total, progress = now_total, max(progress, time.monotonic())
        elif time.monotonic() - progress > idle:
            return
        await asyncio.sleep(0.02)


async def serve(spec: dict[str, Any]) -> None:
    worker = Worker(spec)
    beating = asyncio.create_task(worker.heartbeats())
    await worker.setup()
    emit({"ready": len(worker.subscribers) + len(worker.publishers)})
    line = await asyncio.to_thread(sys.stdin.readline)
    go_ns = int(line.split()[1])
    # The instrument must not pause: a full collection over thousands of clients
    # takes tens of milliseconds, which would read as the server's latency.
    gc.freeze()
    gc.disable()
    result = await worker.run(go_ns)
    cpu_share = result["cpu_s"] / result["wall_s"] if result["wall_s"] else 0.0
    result["cpu_pct"] = round(100 * cpu_share, 1)
    if cpu_share > 0.9:
        print(
            f"loadgen: WARNING: worker used {result['cpu_pct']}% of its core: "
            "the figures may measure the load generator",
            file=sys.stderr,
            flush=True,
        )
    emit(result)
    beating.cancel()
    for client in [*worker.subscribers, *worker.publishers]:
        if client.transport is not None:
            client.transport.abort()


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed on Linux
        return None
    return uvloop.new_event_loop


def main() -> int:
    spec = json.loads(sys.argv[1])
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
