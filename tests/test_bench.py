"""``bench/run --quick``: the benchmark suite runs and speaks JSON (no figure is checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_run_prints_one_json_line_per_scenario_and_target() -> None:
    result = subprocess.run(
        [str(ROOT / "bench" / "run"), "--quick"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        env=os.environ | {"PYTHON": sys.executable},
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
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
