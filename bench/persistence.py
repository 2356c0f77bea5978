"""
Persistence benchmark: chat messages from a STOMP SEND to documents in MongoDB.

Not a test: it asserts nothing about time; it prints one JSON line per run.

For each bus (Kafka on a fresh topic, then the in-memory bus) it starts one
``stomp-gateway`` process with ``--mongo-uri`` on a fresh database. Publishers
send chat messages spread over many rooms, each SEND with a receipt, while the
benchmark counts the documents of ``chat_messages`` every 0.25 s: the
persister lag is the messages acknowledged (RECEIPT) so far minus the documents
stored. First a steady run at a fixed rate, then a max-throughput run: each
publisher keeps a window of SENDs in flight, as fast as RECEIPTs come back.

MongoDB is ``--mongo-uri``, else ``$MONGO_URI``, else the server of
``scripts/mongo-local start``; Kafka is ``--bootstrap``, else
``$KAFKA_BOOTSTRAP``, else the broker of ``scripts/kafka-local start``. A
server this script started is stopped at the end; the databases it created are
dropped.

    .venv/bin/python bench/persistence.py [--rate 1000] [--duration 10] ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

from gateways import (
    GatewayProcess,
    broker,
    fresh_database,
    gateways,
    mongo_server,
    start_gateway,
    stop_gateway,
)
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from protocol import Command, Frame, Limits, Parser

BUSES = ("kafka", "memory")
ERRORS = "/user/queue/errors"
NAMESPACE_NOT_FOUND = 26


def log(message: str) -> None:
    print(f"persistence: {message}", file=sys.stderr, flush=True)


# A minimal STOMP 1.2 client: frames built by hand, read with protocol.Parser.


def frame_bytes(command: str, headers: Iterable[tuple[str, str]], body: bytes = b"") -> bytes:
    head = command + "\n" + "".join(f"{name}:{value}\n" for name, value in headers) + "\n"
    return head.encode() + body + b"\0"


class Client:
    """One WebSocket connection speaking STOMP 1.2."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.parser = Parser(Limits(max_frame_size=2**24, max_headers=1000), version="1.2")
        self._pending: list[Frame] = []

    @classmethod
    async def open(cls, port: int) -> Client:
        ws = await connect(f"ws://127.0.0.1:{port}/ws", max_size=2**24, open_timeout=10)
        client = cls(ws)
        await client.send("CONNECT", [("accept-version", "1.2"), ("host", "localhost")])
        frame = await client.read()
        if frame.command is not Command.CONNECTED:
            raise RuntimeError(f"CONNECT answered with {frame}")
        return client

    async def send(
        self, command: str, headers: Iterable[tuple[str, str]], body: bytes = b""
    ) -> None:
        await self.ws.send(frame_bytes(command, headers, body).decode())

    async def read(self) -> Frame:
        while not self._pending:
            message = await self.ws.recv()
            data = message.encode() if isinstance(message, str) else message
            self._pending.extend(e for e in self.parser.feed(data) if isinstance(e, Frame))
        return self._pending.pop(0)

    async def subscribe(self, destination: str, subscription_id: str) -> None:
        receipt = f"sub-{subscription_id}"
        headers = [("id", subscription_id), ("destination", destination), ("receipt", receipt)]
        await self.send("SUBSCRIBE", headers)
        while True:
            frame = await self.read()
            if frame.command is Command.RECEIPT and frame.get("receipt-id") == receipt:
                return

    async def send_chat(self, seq: int, receipt: bool, room: int) -> None:
        text = f"{seq} {time.time_ns()}"
        body = json.dumps({"memberId": 1, "nickname": "bench", "message": text}).encode()
        headers = [("destination", f"/pub/chat/{room}"), ("content-type", "application/json")]
        if receipt:
            headers.append(("receipt", str(seq)))
        await self.send("SEND", headers, body)

    async def close(self) -> None:
        await self.ws.close()


@dataclasses.dataclass
class Publisher:
    client: Client
    receipted: int = 0
    failed: int = 0
    window: asyncio.Semaphore | None = None

    async def run(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = await self.client.read()
                if frame.command is Command.RECEIPT:
                    self.receipted += 1
                elif frame.command is Command.MESSAGE and frame.get("destination") == ERRORS:
                    self.failed += 1
                else:
                    continue
                if self.window is not None:
                    self.window.release()


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return round(ordered[index], 2)


@contextlib.asynccontextmanager
async def gateway(
    bootstrap: str | None, mongo_uri: str, log_dir: Path, extra: Sequence[str]
) -> AsyncIterator[GatewayProcess]:
    """One gateway storing into ``mongo_uri``: on a fresh Kafka topic, or the in-memory bus."""
    store = ["--mongo-uri", mongo_uri, *extra]
    if bootstrap is not None:
        async with gateways(1, bootstrap, log_dir, store) as (instance,):
            yield instance
        return
    instance = await start_gateway(["--log-level", "warning", *store], log_dir)
    try:
        yield instance
    finally:
        await stop_gateway(instance)


# Measuring.


@dataclasses.dataclass
class Sample:
    at: float  # monotonic time the count came back
    acked: int  # RECEIPTs received, halfway through the count
    stored: int  # documents counted, minus those there before the run

    @property
    def lag(self) -> int:
        return self.acked - self.stored


class Watcher:
    """
    Counts the run's documents while publishers send, with ``$collStats``: the
    collection's own count, which takes milliseconds. A count of the documents
    themselves (``count``, ``count_documents``) takes about 1 s per 10 000 on
    FerretDB: samples would be seconds apart and would slow the persister down.
    """

    def __init__(
        self,
        collection: AsyncCollection[dict[str, Any]],
        publishers: Sequence[Publisher],
        interval: float,
    ) -> None:
        self.collection = collection
        self.publishers = publishers
        self.interval = interval
        self.baseline = 0
        self.samples: list[Sample] = []  # one every ``interval`` s: the lag statistics
        self.count_ms: list[float] = []  # how long each count took

    def acked(self) -> int:
        return sum(p.receipted for p in self.publishers)

    async def count(self) -> int:
        try:
            cursor = await self.collection.aggregate([{"$collStats": {"count": {}}}])
            stats = await cursor.to_list()
        except OperationFailure as exc:
            if exc.code == NAMESPACE_NOT_FOUND:  # no document yet
                return 0
            raise
        return sum(int(shard["count"]) for shard in stats)

    async def sample(self) -> Sample:
        acked, asked = self.acked(), time.monotonic()
        stored = await self.count() - self.baseline
        sample = Sample(time.monotonic(), (acked + self.acked()) // 2, stored)
        self.count_ms.append((sample.at - asked) * 1000)
        if not self.samples or sample.at - self.samples[-1].at >= self.interval * 0.9:
            self.samples.append(sample)
        return sample

    async def during(self, sending: asyncio.Future[Any]) -> None:
        """Sample every ``interval`` s until ``sending`` is done."""
        while not sending.done():
            await asyncio.wait({sending}, timeout=self.interval)
            if not sending.done():
                await self.sample()

    async def until_stored(self, answered: asyncio.Future[float], settle: float) -> Sample:
        """
        Poll (every 50 ms at most) until every acknowledged message is stored,
        or until the count did not grow for ``settle`` s; the first complete
        sample, or the last one that grew.
        """
        grew = await self.sample()
        while True:
            sample = await self.sample()
            if answered.done() and sample.stored >= sample.acked:
                return sample
            if sample.stored > grew.stored or sample.acked > grew.acked:
                grew = sample
            elif sample.at - grew.at > settle:
                return grew
            await asyncio.sleep(min(self.interval, 0.05))


async def all_answered(publishers: Sequence[Publisher], messages: int) -> float:
    """The time every SEND got its RECEIPT or error (or every connection closed)."""
    while sum(p.receipted + p.failed for p in publishers) < messages:
        await asyncio.sleep(0.005)
    return time.monotonic()


async def run(
    kind: str,
    bus: str,
    port: int,
    collection: AsyncCollection[dict[str, Any]],
    *,
    messages: int,
    rate: float | None,
    window: int,
    rooms: int,
    publisher_count: int,
    interval: float,
    settle: float,
) -> dict[str, Any]:
    publishers = [Publisher(await Client.open(port)) for _ in range(publisher_count)]
    for publisher in publishers:
        await publisher.client.subscribe(ERRORS, "errors")
        if rate is None:
            publisher.window = asyncio.Semaphore(window)
    readers = [asyncio.create_task(p.run()) for p in publishers]
    watcher = Watcher(collection, publishers, interval)
    watcher.baseline = await watcher.count()
    started = time.monotonic()

    async def send_share(index: int, publisher: Publisher) -> float:
        """Messages index, index + P, ... through one connection; the time of the last."""
        for seq in range(index, messages, publisher_count):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + seq / rate - time.monotonic()))
            elif publisher.window is not None:
                await publisher.window.acquire()
            await publisher.client.send_chat(seq, receipt=True, room=1 + seq % rooms)
        return time.monotonic()

    sending = asyncio.gather(*(send_share(i, p) for i, p in enumerate(publishers)))
    answered = asyncio.ensure_future(all_answered(publishers, messages))
    try:
        await watcher.during(sending)
        last_send = max(await sending)
        done = await watcher.until_stored(answered, settle)
        stored = await collection.count_documents({}) - watcher.baseline  # exact, after timing
    finally:
        for task in [answered, *readers]:
            task.cancel()
        await asyncio.gather(answered, *readers, return_exceptions=True)
        for publisher in publishers:
            await publisher.client.close()
    acked = watcher.acked()
    complete = done.stored >= acked
    lags = [s.lag for s in watcher.samples]
    result: dict[str, Any] = {
        "run": kind,
        "bus": bus,
        "publishers": publisher_count,
        "rooms": rooms,
        "messages": messages,
        "target_rate": rate,
        "send_rate": round(messages / (last_send - started), 1),
        "acked": acked,
        "send_errors": sum(p.failed for p in publishers),
        "stored": stored,
        "persisted_per_s": round(done.stored / (done.at - started), 1),
        "lag_max": max(lags),
        "lag_p99": percentile(lags, 0.99),
        "lag_min": min(lags),
        "samples": len(lags),
        "count_ms_max": percentile(watcher.count_ms, 1.0),
        "catch_up_ms": round((done.at - last_send) * 1000) if complete else None,
        "lost": max(0, acked - stored),
    }
    if answered.done() and not answered.cancelled():
        result["receipts_per_s"] = round(acked / (answered.result() - started), 1)
    if rate is None:
        result["window"] = window
    return result


async def bench_bus(
    bus: str, bootstrap: str | None, server_uri: str, options: argparse.Namespace, log_dir: Path
) -> None:
    common = {
        "window": options.window,
        "rooms": options.rooms,
        "publisher_count": options.publishers,
        "interval": options.sample_interval,
        "settle": options.settle,
    }
    async with (
        fresh_database(server_uri) as (uri, database),
        gateway(bootstrap, uri, log_dir, options.gateway_arg) as instance,
    ):
        log(f"{bus} bus: gateway on port {instance.port}, database {database.name}")
        runs = [("steady", int(options.rate * options.duration), options.rate)]
        if not options.no_max:
            runs.append(("max", options.max_messages, None))
        for kind, messages, rate in runs:
            result = await run(
                kind,
                bus,
                instance.port,
                database["chat_messages"],
                messages=messages,
                rate=rate,
                **common,
            )
            print(json.dumps(result), flush=True)


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--mongo-uri", default=os.environ.get("MONGO_URI"))
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP"))
    parser.add_argument("--buses", default=",".join(BUSES), help="buses to run (kafka,memory)")
    parser.add_argument("--rate", type=float, default=1000.0, help="steady msg/s (default 1000)")
    parser.add_argument("--duration", type=float, default=10.0, help="steady seconds (10)")
    parser.add_argument("--rooms", type=int, default=100, help="rooms the messages go to (100)")
    parser.add_argument("--publishers", type=int, default=4, help="publishing connections (4)")
    parser.add_argument("--max-messages", type=int, default=20000, help="max-throughput run")
    parser.add_argument(
        "--window", type=int, default=100, help="max run: SENDs in flight per publisher (100)"
    )
    parser.add_argument("--no-max", action="store_true", help="skip the max-throughput run")
    parser.add_argument(
        "--sample-interval", type=float, default=0.25, help="seconds between counts (0.25)"
    )
    parser.add_argument(
        "--settle", type=float, default=10.0, help="seconds without a new document: lost (10)"
    )
    parser.add_argument("--log-dir", type=Path, help="keep the gateways' logs there")
    parser.add_argument(
        "--gateway-arg", action="append", default=[], help="extra stomp-gateway argument"
    )
    options = parser.parse_args(argv)
    buses = options.buses.split(",")
    if unknown := set(buses) - set(BUSES):
        parser.error(f"unknown bus: {', '.join(sorted(unknown))}")
    with contextlib.ExitStack() as servers, tempfile.TemporaryDirectory() as tmp:
        server_uri = servers.enter_context(mongo_server(options.mongo_uri))
        bootstrap = servers.enter_context(broker(options.bootstrap)) if "kafka" in buses else None
        log_dir = options.log_dir or Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        log(f"MongoDB {server_uri}; Kafka {bootstrap or 'not used'}; gateway logs in {log_dir}")
        for bus in buses:
            await bench_bus(
                bus, bootstrap if bus == "kafka" else None, server_uri, options, log_dir
            )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
