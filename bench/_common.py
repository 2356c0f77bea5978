"""Helpers shared by the benchmarks."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@contextlib.contextmanager
def local_server(script: str, variable: str, given: str | None) -> Iterator[str]:
    """
    ``given`` if set, else the address ``scripts/<script> start`` prints as
    ``<variable>=...``. A server this started is stopped at the end; one that
    was already running is left running.
    """
    if given:
        yield given
        return
    command = str(SCRIPTS / script)
    result = subprocess.run([command, "start"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"scripts/{script} start failed:\n{result.stderr}")
    started_here = "already running" not in result.stderr
    prefix = f"{variable}="
    line = next(x for x in result.stdout.splitlines() if x.startswith(prefix))
    try:
        yield line.removeprefix(prefix)
    finally:
        if started_here:
            subprocess.run([command, "stop"], capture_output=True, check=False)
