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
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from _common import local_server
from kafka_fanout import (
    ERRORS,
    Client,
    GatewayProcess,
    Publisher,
    broker,
    gateways,
    percentile,
    start_gateway,
    stop_gateway,
)
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

BUSES = ("kafka", "memory")
NAMESPACE_NOT_FOUND = 26


def log(message: str) -> None:
    print(f"persistence: {message}", file=sys.stderr, flush=True)


def database_uri(server_uri: str, database: str) -> str:
    """``server_uri`` with its database (the URI's path) replaced by ``database``."""
    return urlunsplit(urlsplit(server_uri)._replace(path=f"/{database}"))


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
    uri = database_uri(server_uri, f"bench_{uuid.uuid4().hex[:12]}")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    database = client.get_default_database()
    common = {
        "window": options.window,
        "rooms": options.rooms,
        "publisher_count": options.publishers,
        "interval": options.sample_interval,
        "settle": options.settle,
    }
    try:
        async with gateway(bootstrap, uri, log_dir, options.gateway_arg) as instance:
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
    finally:
        with contextlib.suppress(Exception):
            await client.drop_database(database.name)
        await client.close()


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
        server_uri = servers.enter_context(
            local_server("mongo-local", "MONGO_URI", options.mongo_uri)
        )
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
