"""
The benchmark suite: the gateway side by side with RabbitMQ Web-STOMP and the
transport floor (bench/floor.py), on the same machine in the same run.

Not a test: it asserts nothing about time. It prints one JSON line per
scenario and target, then the ratios gateway/RabbitMQ and gateway/floor;
progress and warnings go to stderr. Run it through ``bench/run`` (which raises
the open-file limit); see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from cluster import cluster
from gateways import (
    broker,
    free_port,
    fresh_database,
    gateways,
    mongo_server,
    start_gateway,
    stop_gateway,
)
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure
from rabbitmq import installed as rabbitmq_installed
from rabbitmq import rabbitmq

BENCH = Path(__file__).resolve().parent
TARGETS = ("gateway", "rabbitmq", "floor")


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# Scenarios, at full scale; --scale and --quick shrink them.


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    targets: tuple[str, ...]
    subscribers: int  # connections, each subscribed to one room
    rooms: int
    messages: int = 0
    rate: float | None = None  # msg/s, open loop; None: one burst
    latency: bool = False
    hold_s: float = 0.0  # idle: how long the connections stay idle
    heartbeat_ms: int = 0
    publishers: int = 1
    receipts: bool = False  # every SEND asks for a RECEIPT
    window: int = 0  # SENDs awaiting their RECEIPT per publisher; 0: no limit


def through_kafka_pair(
    rooms: int, rate: float, publishers: int, steady: int, most: int, window: int
) -> dict[str, Scenario]:
    """Scenario 4: ``steady`` messages at ``rate``, then ``most`` as fast as RECEIPTs come back."""
    at_rate = Scenario("kafka", ("gateway",), rooms, rooms, steady, rate, latency=True)
    at_rate = dataclasses.replace(at_rate, publishers=publishers, receipts=True)
    at_most = dataclasses.replace(
        at_rate, name="kafka_max", messages=most, rate=None, window=window
    )
    return {"kafka": at_rate, "kafka_max": at_most}


FULL = {
    "fanout": Scenario("fanout", TARGETS, subscribers=1000, rooms=1, messages=5000),
    "rooms": Scenario(
        "rooms", ("gateway", "rabbitmq"), 2000, rooms=500, messages=60_000, rate=2000, latency=True
    ),
    "idle": Scenario("idle", TARGETS, 10_000, rooms=500, hold_s=20, heartbeat_ms=10_000),
    **through_kafka_pair(100, 1000, publishers=4, steady=10_000, most=60_000, window=500),
}
QUICK = {
    "fanout": Scenario("fanout", TARGETS, subscribers=20, rooms=1, messages=100),
    "rooms": Scenario(
        "rooms", ("gateway", "rabbitmq"), 20, rooms=10, messages=200, rate=400, latency=True
    ),
    "idle": Scenario("idle", TARGETS, 50, rooms=10, hold_s=0.5, heartbeat_ms=10_000),
    **through_kafka_pair(10, 200, publishers=2, steady=200, most=500, window=50),
}


def scaled(scenario: Scenario, factor: float) -> Scenario:
    if factor == 1:
        return scenario
    rooms = max(1, round(scenario.rooms * factor)) if scenario.rooms > 1 else 1
    per_room = max(1, scenario.subscribers // scenario.rooms)
    subscribers = rooms * per_room if rooms > 1 else max(1, round(scenario.subscribers * factor))
    return dataclasses.replace(
        scenario,
        rooms=rooms,
        subscribers=subscribers,
        messages=max(1, round(scenario.messages * factor)) if scenario.messages else 0,
        rate=scenario.rate * factor if scenario.rate else None,
        hold_s=scenario.hold_s * max(factor, 0.1),
    )


# /proc figures of a server process.


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its waited-for children (proc(5) stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# Servers.


@dataclasses.dataclass
class Server:
    target: str
    port: int  # where publishers connect (and subscribers, unless subscribe_port)
    path: str
    pid: int
    subscribe_port: int | None = None  # another instance
    other_pids: tuple[int, ...] = ()  # more instances, their CPU counted with pid's

    @property
    def pids(self) -> tuple[int, ...]:
        return (self.pid, *self.other_pids)


def pin(cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus] if cpus else []


@contextlib.asynccontextmanager
async def server(target: str, options: argparse.Namespace, log_dir: Path) -> AsyncIterator[Server]:
    prefix = pin(options.server_cpus)
    if target == "gateway":
        args = ["--log-level", "warning", "--event-loop", options.event_loop, *options.gateway_arg]
        gateway = await start_gateway(args, log_dir, prefix)
        try:
            yield Server(target, gateway.port, "/ws", gateway.process.pid)
        finally:
            await stop_gateway(gateway)
    elif target == "floor":
        port = free_port()
        command = [sys.executable, "-P", str(BENCH / "floor.py"), "--port", str(port)]
        command += ["--event-loop", options.event_loop]
        process = subprocess.Popen([*prefix, *command], stdin=subprocess.DEVNULL)
        try:
            await wait_listening(port, process)
            yield Server(target, port, "/", process.pid)
        finally:
            process.terminate()
            await asyncio.to_thread(process.wait)
    else:
        with rabbitmq(prefix, log_dir) as node:
            yield Server(target, node.web_stomp_port, "/ws", node.pid)


async def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after 30 s")


# Load generator workers.


class Workers:
    """One bench/loadgen.py process per load-generator core."""

    def __init__(self, cpus: list[str | None]) -> None:
        self.cpus = cpus
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self, specs: list[dict[str, Any]]) -> int:
        for cpu, spec in zip(self.cpus, specs, strict=True):
            command = [*pin(cpu), sys.executable, str(BENCH / "loadgen.py"), json.dumps(spec)]
            self.processes.append(
                await asyncio.create_subprocess_exec(
                    *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
                )
            )
        ready = [await self._line(p) for p in self.processes]
        return sum(r["ready"] for r in ready)

    async def go(self) -> tuple[int, list[dict[str, Any]]]:
        go_ns = time.monotonic_ns()
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(f"go {go_ns}\n".encode())
            await process.stdin.drain()
        return go_ns, [await self._line(p) for p in self.processes]

    async def _line(self, process: asyncio.subprocess.Process) -> dict[str, Any]:
        assert process.stdout is not None
        line = await process.stdout.readline()
        if not line:
            await process.wait()
            raise RuntimeError(f"load generator exited with {process.returncode}")
        record: dict[str, Any] = json.loads(line)
        return record

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.kill()
            await process.wait()


def settle_s(scenario: Scenario) -> float:
    """How long receivers wait for a next delivery before they give up."""
    return 2.0 if scenario.messages < 1000 else 5.0


def worker_specs(scenario: Scenario, srv: Server, workers: int) -> list[dict[str, Any]]:
    publish = None
    if scenario.messages:
        rooms = list(range(1, scenario.rooms + 1))
        publish = {
            "rooms": rooms,
            "messages": scenario.messages,
            "rate": scenario.rate,
            "publishers": scenario.publishers,
            "receipts": scenario.receipts,
            "window": scenario.window,
        }
    rooms_of_subscribers = [1 + n % scenario.rooms for n in range(scenario.subscribers)]
    return [
        {
            "target": srv.target,
            "port": srv.port,
            "subscribe_port": srv.subscribe_port or srv.port,
            "path": srv.path,
            "rooms": rooms_of_subscribers[index::workers],
            "publish": publish if index == 0 else None,
            "all_publish": publish,
            "latency": scenario.latency,
            "hold_s": scenario.hold_s,
            "heartbeat_ms": scenario.heartbeat_ms,
            "settle_s": settle_s(scenario),
        }
        for index in range(workers)
    ]


# Figures.


def percentile(histogram: Counter[int], fraction: float, scale: float = 1000) -> float | None:
    """Nearest rank of a histogram of values; divided by ``scale`` (µs to ms by default)."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, round(fraction * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return round(value / scale, 3)
    return None  # pragma: no cover


async def measure(
    scenario: Scenario, srv: Server, workers: Workers, cores: int, profile_dir: Path | None
) -> dict[str, Any]:
    rss_before = rss_kib(srv.pid)
    connections = await workers.start(worker_specs(scenario, srv, cores))
    if scenario.hold_s:
        await asyncio.sleep(min(2.0, scenario.hold_s))  # let allocations settle
    rss_after = rss_kib(srv.pid)
    cpu0, wall0 = sum(map(cpu_seconds, srv.pids)), time.monotonic()
    async with profiled(srv, scenario, profile_dir):
        go_ns, results = await workers.go()
        server_cpu = sum(map(cpu_seconds, srv.pids)) - cpu0
        wall = time.monotonic() - wall0
    histogram: Counter[int] = Counter()
    for result in results:
        histogram.update({int(k): v for k, v in result["histogram"].items()})
    deliveries = sum(r["deliveries"] for r in results)
    last_ns = max(r["last_ns"] for r in results)
    record: dict[str, Any] = {
        "scenario": scenario.name,
        "target": srv.target,
        "connections": connections,
        "messages": scenario.messages,
        "deliveries": deliveries,
        "deliveries_per_s": (
            round(deliveries / ((last_ns - go_ns) / 1e9), 1) if deliveries and last_ns else None
        ),
        "lat_ms_p50": percentile(histogram, 0.50),
        "lat_ms_p99": percentile(histogram, 0.99),
        "lat_ms_max": percentile(histogram, 1.0),
        "lost": sum(r["lost"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "closed_by_server": sum(r["closed"] for r in results),
        "server_cpu_pct": round(100 * server_cpu / wall, 1) if wall else None,
        "loadgen_cpu_pct": max(r["cpu_pct"] for r in results),
    }
    if scenario.latency:
        sent = sum(r["sent"] for r in results)
        senders = [r for r in results if r["sent"]]
        if senders:
            spent = (senders[0]["send_last_ns"] - senders[0]["send_first_ns"]) / 1e9
            record["send_rate"] = round(sent / spent, 1) if spent else None
    if scenario.receipts:
        receipts = sum(r["receipts"] for r in results)
        last = max(r["receipt_last_ns"] for r in results)
        record["receipts"] = receipts
        record["receipts_per_s"] = round(receipts / ((last - go_ns) / 1e9), 1) if last else None
    if scenario.messages and not scenario.rate and record["lost"]:
        # The rate is the one until the stall, not the scenario's: say so.
        record["stalled_after"] = deliveries
        record["note"] = (
            f"no delivery for {settle_s(scenario)} s with {record['lost']} missing: "
            "deliveries_per_s is the rate until then"
        )
    if scenario.hold_s:
        beats = sum(r["server_beats"] for r in results)
        # Per connection, between the server's heart-beats (the negotiated interval or less).
        record["server_beat_interval_s"] = (
            round(scenario.hold_s * connections / beats, 2) if beats else None
        )
        record["rss_kib_per_conn"] = round((rss_after - rss_before) / connections, 2)
        record["rss_kib"] = rss_after
        record["idle_cpu_pct"] = record.pop("server_cpu_pct")
        for key in ("deliveries", "deliveries_per_s", "lat_ms_p50", "lat_ms_p99", "lat_ms_max"):
            record.pop(key)
    if record["loadgen_cpu_pct"] > 90:
        record["warning"] = "load generator saturated: figures may measure it"
    return record


def ratios(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lines = []
    by_key = {(r["scenario"], r["target"]): r for r in records if "target" in r}
    fields = ("deliveries_per_s", "lat_ms_p50", "lat_ms_p99", "rss_kib_per_conn", "idle_cpu_pct")
    for (scenario, target), record in by_key.items():
        if target != "gateway":
            continue
        for other in ("rabbitmq", "floor"):
            base = by_key.get((scenario, other))
            if base is None:
                continue
            line: dict[str, Any] = {"scenario": scenario, "ratio": f"gateway/{other}"}
            for field in fields:
                if record.get(field) is not None and base.get(field):
                    line[field] = round(record[field] / base[field], 3)
            if stalled := [r["target"] for r in (record, base) if "stalled_after" in r]:
                line["note"] = f"{' and '.join(stalled)} stalled: rates until the stall compared"
            lines.append(line)
    return lines


# Profiles.


@contextlib.asynccontextmanager
async def profiled(srv: Server, scenario: Scenario, out: Path | None) -> AsyncIterator[None]:
    """Sample each gateway with py-spy while the scenario runs; print the top functions."""
    if out is None or srv.target != "gateway":
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    raws, spies = [], []
    for index, pid in enumerate(srv.pids):
        suffix = f"-{index + 1}" if srv.other_pids else ""
        raws.append(out / f"{scenario.name}-{srv.target}{suffix}.txt")
        command = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid)]
        command += ["--rate", "200", "--format", "raw", "--output", str(raws[-1]), "--nonblocking"]
        spies.append(
            await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
            )
        )
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            await spy.wait()
    for raw in raws:
        if raw.exists():
            emit({"scenario": scenario.name, "target": srv.target, "profile": str(raw), **top(raw)})


def top(raw: Path, count: int = 15) -> dict[str, Any]:
    """The functions most samples were in (self) and under (total), in % of samples."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue  # py-spy may cut a line short when stopped
        frames = [
            frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1].rstrip(")")
            for frame in stack.split(";")
        ]
        weight = int(number)
        samples += weight
        own[frames[-1]] += weight
        for frame in set(frames):
            total[frame] += weight

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / samples, 1)) for name, n in counter.most_common(count)]

    return {"samples": samples, "self_pct": pct(own), "total_pct": pct(total)} if samples else {}


# The Kafka and MongoDB scenario.

KAFKA_RUNS = ("kafka", "kafka_max")  # steady rate, then maximum ingest, on the same gateways
PUBLISHED = "stomp_gateway_messages_published_total"
NAMESPACE_NOT_FOUND = 26


async def through_kafka(
    options: argparse.Namespace, table: dict[str, Scenario], log_dir: Path, cores: list[str | None]
) -> list[dict[str, Any]]:
    """Two gateways on one fresh topic and database: publishers on one, subscribers on the other."""
    records = []
    with broker(options.kafka_bootstrap) as bootstrap, mongo_server(options.mongo_uri) as mongo:
        async with fresh_database(mongo) as (uri, database):
            args = ["--mongo-uri", uri, "--event-loop", options.event_loop, *options.gateway_arg]
            prefix = pin(options.server_cpus)
            async with gateways(2, bootstrap, log_dir, args, prefix) as (first, second):
                srv = Server(
                    "gateway",
                    first.port,
                    "/ws",
                    first.process.pid,
                    subscribe_port=second.port,
                    other_pids=(second.process.pid,),
                )
                collection = database["chat_messages"]
                for name in KAFKA_RUNS:
                    scenario = scaled(table[name], options.scale)
                    log(f"{name} through Kafka {bootstrap} and MongoDB {uri}: {scenario}")
                    before = await collection.count_documents({})
                    persister = PersisterLag((first.port, second.port), collection)
                    workers = Workers(cores)
                    try:
                        async with persister.sampling() as lags:
                            record = await measure(
                                scenario, srv, workers, len(cores), options.profile
                            )
                    finally:
                        await workers.stop()
                    caught_up = await persister.caught_up()
                    stored = await collection.count_documents({}) - before  # exact, untimed
                    record |= {
                        "persister_lag_max": max(lags, default=None),
                        "persister_lag_p99": percentile(Counter(lags), 0.99, scale=1),
                        "persister_catch_up_ms": caught_up,
                        "stored": stored,
                        "unstored": max(0, record["receipts"] - stored),
                    }
                    emit(record)
                    records.append(record)
    return records


class PersisterLag:
    """
    Messages the bus acknowledged (the instances' ``messages_published``, i.e.
    RECEIPTed) minus documents stored (``$collStats`` count: milliseconds, where
    counting the documents takes about 1 s per 10,000 on FerretDB).
    """

    def __init__(self, ports: Sequence[int], collection: AsyncCollection[dict[str, Any]]) -> None:
        self.ports = ports
        self.collection = collection
        self.published = self.stored = 0  # at the start

    async def acked_and_stored(self) -> tuple[int, int]:
        published = sum([await scrape(port, PUBLISHED) for port in self.ports])
        try:
            cursor = await self.collection.aggregate([{"$collStats": {"count": {}}}])
            stored = sum(int(shard["count"]) for shard in await cursor.to_list())
        except OperationFailure as exc:
            if exc.code != NAMESPACE_NOT_FOUND:  # no document yet
                raise
            stored = 0
        return published - self.published, stored - self.stored

    async def lag(self) -> int:
        acked, stored = await self.acked_and_stored()
        return acked - stored

    @contextlib.asynccontextmanager
    async def sampling(self, interval: float = 0.25) -> AsyncIterator[list[int]]:
        """Sample the lag every ``interval`` s meanwhile."""
        self.published, self.stored = await self.acked_and_stored()
        samples: list[int] = []

        async def sample() -> None:
            while True:
                samples.append(await self.lag())
                await asyncio.sleep(interval)

        task = asyncio.create_task(sample())
        try:
            yield samples
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def caught_up(self, timeout: float = 30) -> int | None:
        """Milliseconds until every acknowledged message is stored (None: not in ``timeout``)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if await self.lag() <= 0:
                return round((time.monotonic() - start) * 1000)
            await asyncio.sleep(0.05)
        return None


async def scrape(port: int, metric: str) -> int:
    """One unlabelled metric of a gateway's ``/metrics``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        response = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    for line in response.decode().splitlines():
        if line.startswith(metric + " "):
            return int(float(line.split()[1]))
    raise RuntimeError(f"no {metric} in the metrics of port {port}")


# Main.


async def run_scenarios(options: argparse.Namespace) -> int:
    table = QUICK if options.quick else FULL
    names = options.scenarios.split(",")
    targets = options.targets.split(",")
    cores = [c or None for c in (options.loadgen_cpus or "").split(",")] or [None]
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = options.log_dir or Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            if name == "kafka":
                records += await through_kafka(options, table, log_dir, cores)
                continue
            if name == "cluster":
                records += await cluster(options, log_dir, cores)
                continue
            scenario = scaled(table[name], options.scale)
            for target in scenario.targets:
                if target not in targets:
                    continue
                if target == "rabbitmq" and not rabbitmq_installed():
                    log("skipping rabbitmq: apt-get install -y rabbitmq-server")
                    continue
                log(f"{name} on {target}: {scenario}")
                async with server(target, options, log_dir) as srv:
                    workers = Workers(cores)
                    try:
                        record = await measure(scenario, srv, workers, len(cores), options.profile)
                    finally:
                        await workers.stop()
                emit(record)
                records.append(record)
    for line in ratios(records):
        emit(line)
    return 0


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def default_cpus() -> tuple[str | None, str | None]:
    """Server on core 0, load generator on the others, when there are two or more."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return str(cpus[0]), ",".join(str(c) for c in cpus[1:])


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    server_cpus, loadgen_cpus = default_cpus()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--scenarios", default="fanout,rooms,idle", help="of fanout,rooms,idle,kafka,cluster"
    )
    parser.add_argument(
        "--kafka-partitions", type=int, help="cluster: partitions of the topic (default 64)"
    )
    parser.add_argument(
        "--cluster-steps", help="cluster: only the steps whose names start so (comma-separated)"
    )
    parser.add_argument("--targets", default=",".join(TARGETS), help="of gateway,rabbitmq,floor")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply counts and rates")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run in seconds: gateway and floor, tiny"
    )
    parser.add_argument("--server-cpus", default=server_cpus, help="taskset list for servers")
    parser.add_argument(
        "--loadgen-cpus",
        default=loadgen_cpus,
        help="load generator cores, one worker process each (comma-separated)",
    )
    parser.add_argument("--event-loop", default="auto", choices=("auto", "asyncio", "uvloop"))
    parser.add_argument("--gateway-arg", action="append", default=[], help="extra gateway option")
    parser.add_argument("--log-dir", type=Path, help="keep server logs there")
    parser.add_argument(
        "--kafka-bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP"),
        help="kafka: the broker (default $KAFKA_BOOTSTRAP, else scripts/kafka-local start)",
    )
    parser.add_argument(
        "--mongo-uri",
        default=os.environ.get("MONGO_URI"),
        help="kafka: the MongoDB server (default $MONGO_URI, else scripts/mongo-local start)",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy the gateway into this directory; print its top"
    )
    options = parser.parse_args(argv)
    if options.quick and options.targets == ",".join(TARGETS):
        options.targets = "gateway,floor"
    return options


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run_scenarios(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
