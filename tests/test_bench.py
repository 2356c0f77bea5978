"""``bench/run --quick``: the benchmark suite runs and speaks JSON (no figure is checked)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def quick_run(*args: str, timeout: float = 110) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(ROOT / "bench" / "run"), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=os.environ | {"PYTHON": sys.executable},
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def bench_module(name: str) -> ModuleType:
    """Import ``bench/<name>.py`` (bench/ is a directory of scripts, not a package)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "bench"))


def test_quick_run_prints_one_json_line_per_scenario_and_target() -> None:
    records = quick_run()
    runs = {(r["scenario"], r["target"]): r for r in records if "target" in r}
    assert set(runs) == {
        ("fanout", "gateway"),
        ("fanout", "floor"),
        ("rooms", "gateway"),
        ("idle", "gateway"),
        ("idle", "floor"),
    }
    for record in runs.values():
        assert isinstance(record["lost"], int)
        assert isinstance(record["loadgen_cpu_pct"], float | int)
    assert runs[("fanout", "gateway")]["deliveries_per_s"] > 0
    assert runs[("rooms", "gateway")]["lat_ms_p99"] is not None
    assert runs[("idle", "gateway")]["rss_kib_per_conn"] is not None
    ratios = [r for r in records if "ratio" in r]
    assert {(r["scenario"], r["ratio"]) for r in ratios} == {
        ("fanout", "gateway/floor"),
        ("idle", "gateway/floor"),
    }


@pytest.mark.kafka
@pytest.mark.mongo
def test_quick_kafka_run_goes_from_one_instance_to_the_other_and_to_mongodb(
    kafka_bootstrap: str, mongo_uri: str
) -> None:
    records = quick_run(
        "--scenarios", "kafka", "--kafka-bootstrap", kafka_bootstrap, "--mongo-uri", mongo_uri
    )
    assert [r["scenario"] for r in records] == ["kafka", "kafka_max"]
    for record in records:
        assert record["deliveries"] == record["messages"]
        assert record["receipts"] == record["messages"]
        assert record["stored"] == record["messages"]
        assert record["lost"] == record["unstored"] == 0
        assert record["lat_ms_p99"] is not None
        assert isinstance(record["persister_lag_max"], int)


@pytest.mark.kafka
@pytest.mark.mongo
@pytest.mark.timeout(300)
def test_quick_cluster_run_prints_a_line_per_instance_and_step(
    kafka_bootstrap: str, mongo_uri: str
) -> None:
    records = quick_run(
        "--scenarios",
        "cluster",
        "--kafka-bootstrap",
        kafka_bootstrap,
        "--mongo-uri",
        mongo_uri,
        timeout=280,
    )
    costs, *lines = records
    assert costs["step"] == "record-costs"
    assert costs["us_per_skipped"] > 0
    assert costs["us_per_delivered"] > 0
    steps = {(r["step"], r["instance"]): r for r in lines}
    assert set(steps) == {
        ("ceiling", 0),
        ("ceiling", 1),
        ("ceiling", "all"),
        ("seed-2", 0),
        ("seed-2", 1),
        ("seed-2", "all"),
        ("interest-2-partition", 0),
        ("interest-2-partition", 1),
        ("interest-2-partition", "all"),
        ("interest-2-nginx", 0),
        ("interest-2-nginx", 1),
        ("interest-2-nginx", "all"),
        ("workers-2", 0),
        ("workers-2", "all"),
    }
    for line in lines:
        assert line["scenario"] == "cluster"
        assert line["fetched"] >= line["skipped"] >= 0
        assert isinstance(line["cpu_pct"], float | int)
    assert steps[("ceiling", 1)]["fetched"] == steps[("ceiling", 1)]["skipped"]  # reads only
    assert steps[("ceiling", "all")]["seed_ceiling_records_per_core_s"] > 0
    for step in ("seed-2", "interest-2-partition", "interest-2-nginx", "workers-2"):
        total = steps[(step, "all")]
        assert total["lost"] == 0
        assert total["deliveries"] == total["delivered"]
        assert "cpu_pct_no_subscriber" in total
    # Placed by partition, an instance in interest mode fetches only its rooms' partitions.
    assert steps[("interest-2-partition", "all")]["wasted_reads"] == 0
    assert steps[("interest-2-nginx", "all")]["wasted_reads"] == 0
    assert steps[("workers-2", 0)]["workers"] == 2


def test_a_ratio_says_when_a_target_stalled_before_all_deliveries() -> None:
    suite = bench_module("suite")
    gateway = {"scenario": "fanout", "target": "gateway", "deliveries_per_s": 100.0}
    stalled = {"scenario": "fanout", "target": "rabbitmq", "deliveries_per_s": 10.0}
    stalled["stalled_after"] = 7
    floor = {"scenario": "fanout", "target": "floor", "deliveries_per_s": 50.0}
    lines = {line["ratio"]: line for line in suite.ratios([gateway, stalled, floor])}
    assert lines["gateway/rabbitmq"]["deliveries_per_s"] == 10.0
    assert "rabbitmq stalled" in lines["gateway/rabbitmq"]["note"]
    assert "note" not in lines["gateway/floor"]


@pytest.mark.parametrize("instances", [2, 4])
def test_the_nginx_placement_is_the_partition_of_nginx_hash(instances: int) -> None:
    """
    The ``nginx`` placement puts a room where nginx's ``hash $arg_room;`` does
    (test_nginx_hash.py), which with ``--partitioner nginx-hash`` is
    ``partition % instances``: every room of a partition on one instance.
    """
    from kafka_bridge.kafka import partition_for

    cluster = bench_module("cluster")
    load = cluster.FULL
    step = cluster.nginx_step(instances, load)
    assert (step.mode, step.partitioner) == ("interest", "nginx-hash")
    ports = [9000 + index for index in range(instances)]
    placed = cluster.placement(step, load, ports, seed=16)
    assert len(placed) == load.subscribers
    for port, rooms in placed:
        (room,) = rooms
        partition = partition_for(str(room), load.partitions, "nginx-hash")
        assert port == ports[partition % instances]
    assert {port for port, _ in placed} == set(ports)
