"""
Run the session state machine of ``tests/protocol/test_session_machine.py`` for a time budget.

    .venv/bin/python fuzz/session.py --seconds 600

Repeats hypothesis runs of 1000 examples each (fresh random seeds) until the
budget is spent; a failure prints hypothesis's shrunk example and exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from tests.protocol.test_session_machine import SessionMachine


def main(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < deadline:
        run_state_machine_as_test(
            SessionMachine,
            settings=settings(
                max_examples=1000, stateful_step_count=50, deadline=None, database=None
            ),
        )
        runs += 1
    print(f"{runs} runs of 1000 sessions: no failure")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget")
    main(parser.parse_args().seconds)
