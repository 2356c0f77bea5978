"""
The cluster scenario (``bench/run --scenarios cluster``): K gateway instances on
one Kafka topic and one MongoDB, subscribers spread over them as a load
balancer would, a total rate over many rooms; how much each instance reads for
rooms it does not serve, and what that costs.

Steps, each on fresh instances and a fresh topic:

* ``record-costs``: in this process, what the fan-out spends on one record
  handed over by aiokafka: skipped by its key, read with no local subscriber
  (what every such record cost before the skip), delivered to one subscriber;
* ``ceiling``: two instances, the publishers on the first, nothing on the
  second but the topic at the full rate: the rate one core reads the topic at
  in the seed's model (every instance reads every record), in records/s per core;
* ``seed-K``: K = 1, 2, 4 instances, ``--fan-out-partitions all``, random placement;
* with 4 instances, ``interest`` and the placements ``room`` (a hash of the
  room, as nginx ``hash $arg_room``) and ``partition`` (the room's partition
  decides, ``room % partitions``): seed model vs interest, random vs affine;
* ``interest-4-nginx``: ``--partitioner nginx-hash`` and the placement
  ``nginx``, the server nginx's plain ``hash $arg_room;`` picks: partition-affine
  with a stock nginx.

One JSON line per instance and step (``scenario: cluster``), then one per step
with the cluster's totals (``instance: all``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import random
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from gateways import broker, create_topic, fresh_database, mongo_server, start_gateway, stop_gateway

from kafka_bridge.kafka import nginx_hash

METRICS = {
    "fetched": "stomp_gateway_kafka_records_fetched_total",
    "skipped": "stomp_gateway_kafka_records_skipped_total",
    "bytes": "stomp_gateway_kafka_bytes_fetched_total",
    "delivered": "stomp_gateway_messages_delivered_total",
}


@dataclasses.dataclass(frozen=True)
class Step:
    name: str
    instances: int
    mode: str  # --fan-out-partitions
    placement: str  # random, room, partition, nginx
    subscribers: int  # connections
    workers: int = 1  # --workers of each instance
    burst: bool = False  # publish as fast as possible, not at the load's rate
    partitioner: str = "modulo"  # --partitioner


@dataclasses.dataclass(frozen=True)
class Load:
    rooms: int
    rate: float  # msg/s over all rooms
    seconds: float
    partitions: int
    subscribers: int


PUBLISHERS_PER_PORT = 8  # for the workers steps

FULL = Load(rooms=2000, rate=1000, seconds=10, partitions=64, subscribers=2000)
QUICK = Load(rooms=40, rate=100, seconds=1.5, partitions=8, subscribers=40)


def steps(load: Load, quick: bool) -> list[Step]:
    seed = [Step(f"seed-{k}", k, "all", "random", load.subscribers) for k in (1, 2, 4)]
    most = 4
    if quick:  # the shape only: every kind of step once
        return [
            Step("ceiling", 2, "all", "random", 0),
            Step("seed-2", 2, "all", "random", load.subscribers),
            Step("interest-2-partition", 2, "interest", "partition", load.subscribers),
            nginx_step(2, load),
            Step("workers-2", 1, "all", "random", load.subscribers, workers=2, burst=True),
        ]
    return [
        Step("ceiling", 2, "all", "random", 0),
        *seed,
        Step(f"interest-{most}-random", most, "interest", "random", load.subscribers),
        Step(f"seed-{most}-room", most, "all", "room", load.subscribers),
        Step(f"interest-{most}-room", most, "interest", "room", load.subscribers),
        Step(f"interest-{most}-partition", most, "interest", "partition", load.subscribers),
        nginx_step(most, load),
        Step("workers-1", 1, "all", "random", load.subscribers, workers=1, burst=True),
        Step("workers-2", 1, "all", "random", load.subscribers, workers=2, burst=True),
    ]


def nginx_step(instances: int, load: Load) -> Step:
    """Interest mode behind nginx's ``hash $arg_room;``, rooms partitioned to match."""
    name = f"interest-{instances}-nginx"
    return Step(name, instances, "interest", "nginx", load.subscribers, partitioner="nginx-hash")


def placement(step: Step, load: Load, ports: Sequence[int], seed: int) -> list[list[Any]]:
    """
    Each connection's instance and rooms: at random, 1-3 rooms each; room-affine,
    one room each (clients that use one room at a time), on the instance the
    balancer's hash of the room (``room``), of its partition (``partition``) or
    nginx's ``hash $arg_room;`` (``nginx``) picks.
    """
    rng = random.Random(seed)
    out: list[list[Any]] = []
    for number in range(step.subscribers):
        room = 1 + number % load.rooms  # every room has a subscriber somewhere
        if step.placement == "random":
            others = rng.sample(range(1, load.rooms + 1), rng.randint(0, 2))
            out.append([rng.choice(ports), [room, *(r for r in others if r != room)]])
            continue
        if step.placement == "nginx":  # test_nginx_hash.py: what a real nginx picks
            out.append([ports[nginx_hash(str(room)) % len(ports)], [room]])
            continue
        key = room % load.partitions if step.placement == "partition" else room
        hashed = key if step.placement == "partition" else zlib.crc32(str(key).encode())
        out.append([ports[hashed % len(ports)], [room]])
    return out


@contextlib.asynccontextmanager
async def instances(
    step: Step, bootstrap: str, uri: str, partitions: int, log_dir: Path, extra: list[str]
) -> AsyncIterator[list[Any]]:
    topic = f"bench-cluster-{time.monotonic_ns()}"
    await create_topic(bootstrap, topic, partitions)
    args = ["--kafka-bootstrap", bootstrap, "--kafka-topic", topic]
    args += ["--kafka-partitions", str(partitions), "--fan-out-partitions", step.mode]
    args += ["--partitioner", step.partitioner]
    args += ["--mongo-uri", uri, "--log-level", "warning", "--workers", str(step.workers), *extra]
    started = []
    try:
        for _ in range(step.instances):
            started.append(await start_gateway(args, log_dir))
            await all_workers_up(started[-1].port, step.workers)
        yield started
    finally:
        await asyncio.gather(*(stop_gateway(gateway) for gateway in started))


async def metrics_text(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return (await asyncio.wait_for(reader.read(), 5)).decode()
    finally:
        writer.close()


async def scrape_all(port: int) -> dict[str, float]:
    """The cluster metrics of one instance (summed over its workers)."""
    response = await metrics_text(port)
    values: dict[str, float] = {}
    for line in response.splitlines():
        name, _, value = line.partition(" ")
        name = name.split("{")[0]  # with --workers, one sample per worker
        for field, metric in METRICS.items():
            if name == metric:
                values[field] = values.get(field, 0.0) + float(value)
    return values


async def fetching_done(ports: list[int], workers: int, timeout: float = 30) -> None:
    """Until the instances' fetched records stop growing (the fan-out caught up)."""
    # With --workers, each worker's figures reach the others' /metrics within a second.
    quiet = 1.5 if workers > 1 else 0.5
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        fetched = sum([(await scrape_all(port)).get("fetched", 0.0) for port in ports])
        if fetched == last:
            return
        last = fetched
        await asyncio.sleep(quiet)


async def all_workers_up(port: int, workers: int, timeout: float = 60) -> None:
    """Until ``/metrics`` has every worker's figures (/readyz answered from one)."""
    if workers == 1:
        return
    deadline = time.monotonic() + timeout
    while True:
        response = await metrics_text(port)
        if response.count("stomp_gateway_connections{") >= workers:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all {workers} workers on port {port} up in {timeout} s")
        await asyncio.sleep(0.2)


def process_tree(pid: int) -> list[int]:
    """``pid`` and, with --workers, its workers (the supervisor waits for none while they run)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def tree_cpu(pid: int) -> float:
    from suite import cpu_seconds

    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(FileNotFoundError):
            total += cpu_seconds(member)
    return total


async def run_step(
    step: Step,
    load: Load,
    servers: list[Any],
    workers: Any,
    cores: int,
    profile: Path | None,
    read_us: float,
) -> list[dict[str, Any]]:
    """Run the load of one step; one line per instance, then the cluster's."""
    from suite import Scenario, Server, percentile, profiled

    ports = [gateway.port for gateway in servers]
    subscriptions = placement(step, load, ports, seed=16)
    messages = max(1, round(load.rate * load.seconds))
    publish_ports = ports[:1] if step.name == "ceiling" else ports
    publish = {
        "rooms": list(range(1, load.rooms + 1)),
        "messages": messages,
        "rate": None if step.burst else load.rate,
        # Workers share a port: enough publishers that the kernel spreads them over all.
        "publishers": max(len(publish_ports), PUBLISHERS_PER_PORT if step.burst else 1),
        "receipts": False,
        "window": 0,
    }
    specs = [
        {
            "target": "gateway",
            "port": ports[0],
            "publish_ports": publish_ports,
            "path": "/ws",
            "subscriptions": subscriptions[index::cores],
            "publish": publish if index == 0 else None,
            "all_publish": publish,
            "latency": True,
            "hold_s": 0,
            "heartbeat_ms": 0,
            "settle_s": 2.0 if messages < 1000 else 5.0,
        }
        for index in range(cores)
    ]
    await workers.start(specs)
    idle = await idle_cpu([gateway.process.pid for gateway in servers], min(load.seconds, 3.0))
    before = [await scrape_all(port) for port in ports]
    cpu_before = [tree_cpu(gateway.process.pid) for gateway in servers]
    started = time.monotonic()
    first, *others = [pid for gateway in servers for pid in process_tree(gateway.process.pid)]
    srv = Server("gateway", ports[0], "/ws", first, other_pids=tuple(others))
    named = Scenario(f"cluster-{step.name}", ("gateway",), step.subscribers, load.rooms)
    async with profiled(srv, named, profile):
        go_ns, results = await workers.go()
        await fetching_done(ports, step.workers)
        wall = time.monotonic() - started
        cpu = [tree_cpu(g.process.pid) - c for g, c in zip(servers, cpu_before, strict=True)]
    after = [await scrape_all(port) for port in ports]
    histogram: Counter[int] = Counter()
    for result in results:
        histogram.update({int(k): v for k, v in result["histogram"].items()})
    lines = []
    for index, (start, end, used) in enumerate(zip(before, after, cpu, strict=True)):
        counts = {field: int(end.get(field, 0) - start.get(field, 0)) for field in METRICS}
        lines.append(instance_line(step, load, index, counts, used, idle[index], wall, read_us))
    total = {field: sum(line[field] for line in lines) for field in METRICS}
    summary = instance_line(step, load, "all", total, sum(cpu), sum(idle), wall, read_us)
    summary |= {
        "subscriptions": sum(len(rooms) for _, rooms in subscriptions),
        "messages": messages,
        "deliveries": sum(r["deliveries"] for r in results),
        "lost": sum(r["lost"] for r in results),
        "lat_ms_p50": percentile(histogram, 0.50),
        "lat_ms_p99": percentile(histogram, 0.99),
        "loadgen_cpu_pct": max(r["cpu_pct"] for r in results),
    }
    if step.burst:
        last = max(r["last_ns"] for r in results)
        spent = (last - go_ns) / 1e9 if last else 0
        summary["deliveries_per_s"] = round(summary["deliveries"] / spent, 1) if spent else None
    return [*lines, summary]


async def idle_cpu(pids: list[int], seconds: float) -> list[float]:
    """Each process's CPU share (of a core) while the clients are connected and nothing is sent."""
    before = [tree_cpu(pid) for pid in pids]
    await asyncio.sleep(seconds)
    return [(tree_cpu(pid) - b) / seconds for pid, b in zip(pids, before, strict=True)]


def instance_line(
    step: Step,
    load: Load,
    index: int | str,
    counts: dict[str, int],
    cpu: float,
    idle: float,
    wall: float,
    read_us: float,
) -> dict[str, Any]:
    """
    One instance's (or the cluster's) reads and CPU. The CPU beyond the idle
    share (heart-beat wheel, Kafka polling) is split: a record with no local
    subscriber costs ``read_us`` (aiokafka's decoding and the skip, from
    ``record-costs``), the records delivered the rest.
    """
    fetched, skipped = counts["fetched"], counts["skipped"]
    busy = max(0.0, cpu - idle * wall)
    line: dict[str, Any] = {
        "scenario": "cluster",
        "step": step.name,
        "instance": index,
        "instances": step.instances,
        "fan_out_partitions": step.mode,
        "workers": step.workers,
        "placement": step.placement,
        "partitions": load.partitions,
        "rooms": load.rooms,
        "rate": load.rate,
        **counts,
        "wasted_reads": round(skipped / fetched, 3) if fetched else None,
        "cpu_s": round(cpu, 3),
        "cpu_pct": round(100 * cpu / wall, 1) if wall else None,
        "idle_cpu_pct": round(100 * idle, 1),
    }
    if fetched and busy:
        # The load's CPU per fetched record; with no subscriber (ceiling), reading's whole cost.
        line["us_per_fetched"] = round(1e6 * busy / fetched, 1)
        line["records_per_core_s"] = round(fetched / busy, 1)
    if wall:
        unsubscribed = min(busy, skipped * read_us / 1e6)
        line["cpu_pct_no_subscriber"] = round(100 * unsubscribed / wall, 1)
        line["cpu_pct_delivered"] = round(100 * (busy - unsubscribed) / wall, 1)
    return line


async def cluster(
    options: argparse.Namespace, log_dir: Path, cores: list[str | None]
) -> list[dict[str, Any]]:
    from suite import Workers, emit, log

    load = QUICK if options.quick else FULL
    load = dataclasses.replace(load, partitions=options.kafka_partitions or load.partitions)
    records: list[dict[str, Any]] = []
    with broker(options.kafka_bootstrap) as bootstrap, mongo_server(options.mongo_uri) as mongo:
        costs = record_costs(5_000 if options.quick else 200_000, bootstrap)
        emit(costs)
        records.append(costs)
        read_us = costs["us_per_record_aiokafka"] + costs["us_per_skipped"]
        chosen = (options.cluster_steps or "").split(",")
        for step in steps(load, options.quick):
            if not any(step.name.startswith(prefix) for prefix in chosen):
                continue
            log(f"cluster {step} {load}")
            async with (
                fresh_database(mongo) as (uri, _),
                instances(
                    step,
                    bootstrap,
                    uri,
                    load.partitions,
                    log_dir,
                    ["--event-loop", options.event_loop, *options.gateway_arg],
                ) as servers,
            ):
                workers = Workers(cores)
                try:
                    lines = await run_step(
                        step, load, servers, workers, len(cores), options.profile, read_us
                    )
                finally:
                    await workers.stop()
            if step.name == "ceiling":
                # Live, polling and the machine's noise hide the records' cost at this rate
                # (instance 1 only reads: compare its cpu_pct with its idle_cpu_pct); the
                # ceiling comes from record-costs' per-record figures.
                ceiling = costs["seed_ceiling_records_per_core_s"]
                lines[-1]["seed_ceiling_records_per_core_s"] = ceiling
            for line in lines:
                emit(line)
            records += lines
    return records


def record_costs(count: int, bootstrap: str) -> dict[str, Any]:
    """bench/record_costs.py, in a process of its own (it imports the gateway's packages)."""
    script = Path(__file__).with_name("record_costs.py")
    command = [sys.executable, "-P", str(script), str(count), bootstrap]
    output = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(output.stdout)
    return result
