"""``bench/run --quick``: the benchmark suite runs and speaks JSON (no figure is checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def quick_run(*args: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(ROOT / "bench" / "run"), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        env=os.environ | {"PYTHON": sys.executable},
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


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


def test_a_ratio_says_when_a_target_stalled_before_all_deliveries() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import suite
    finally:
        sys.path.remove(str(ROOT / "bench"))
    gateway = {"scenario": "fanout", "target": "gateway", "deliveries_per_s": 100.0}
    stalled = {"scenario": "fanout", "target": "rabbitmq", "deliveries_per_s": 10.0}
    stalled["stalled_after"] = 7
    floor = {"scenario": "fanout", "target": "floor", "deliveries_per_s": 50.0}
    lines = {line["ratio"]: line for line in suite.ratios([gateway, stalled, floor])}
    assert lines["gateway/rabbitmq"]["deliveries_per_s"] == 10.0
    assert "rabbitmq stalled" in lines["gateway/rabbitmq"]["note"]
    assert "note" not in lines["gateway/floor"]
