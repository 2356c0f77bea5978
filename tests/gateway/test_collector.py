"""The gateway's garbage-collector settings (in a child process: they are process-wide)."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import gc, json
from gateway.collector import YOUNG_THRESHOLD, tune_collector
before = gc.get_threshold()
tune_collector()
print(json.dumps({"before": before, "after": gc.get_threshold(),
                  "frozen": gc.get_freeze_count(), "young": YOUNG_THRESHOLD}))
"""


def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, check=True)
    settings = json.loads(out.stdout)
    assert settings["after"] == [settings["young"], *settings["before"][1:]]
    assert settings["young"] > settings["before"][0]
    assert settings["frozen"] > 10_000  # the modules of the gateway and its libraries
