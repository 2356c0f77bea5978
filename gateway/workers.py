"""
``--workers N``: N gateway processes serving one port, each a full instance on the Kafka bus.

The supervisor (the process started) binds nothing but a reservation of the
port, starts the workers as ``stomp-gateway ... --workers 1`` with
:data:`WORKER_ENV` set, and each worker listens with ``SO_REUSEPORT``: the
kernel spreads new connections over them. A worker that exits unasked is
logged and started again, unless it could not start at all (then all stop and
the supervisor exits 1, as one instance would); SIGTERM and SIGINT are passed
on to every worker, which drain as one instance does, and the supervisor exits
once all have.

Each worker writes its metrics to a file of a directory the supervisor owns
(:class:`WorkerMetrics`): ``/metrics``, on whichever worker a scrape lands,
shows every worker's, each with a ``worker`` label.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

__all__ = ["WORKER_ENV", "WorkerMetrics", "supervise", "worker_identity"]

logger = logging.getLogger("gateway.workers")

WORKER_ENV = "STOMP_GATEWAY_WORKER"  # "<index>:<metrics directory>", set for workers only
RESTART_PAUSE = 1.0  # seconds between restarts of a worker that keeps crashing
# A worker exiting 1 this soon after its start could not start (port taken, Kafka
# unreachable: see cli.run): starting it again would fail the same way.
STARTUP_SECONDS = 30.0
POLL = 0.2  # seconds between looks at the workers
_PR_SET_PDEATHSIG = 1


def worker_identity() -> tuple[int, Path] | None:
    """This process's worker index and metrics directory, or None outside ``--workers``."""
    value = os.environ.get(WORKER_ENV)
    if not value:
        return None
    index, _, directory = value.partition(":")
    return int(index), Path(directory)


class WorkerMetrics:
    """
    ``/metrics`` across the workers: this worker's, fresh, and the others' as
    they last wrote them (every :data:`SHARE_INTERVAL` seconds and at each scrape).

    Args:
        render: This worker's metrics in the Prometheus text format.
        index: This worker's index.
        directory: Where each worker keeps ``worker-<index>.prom``.

    """

    SHARE_INTERVAL = 1.0

    def __init__(self, render: Callable[[], bytes], index: int, directory: Path) -> None:
        self._render = render
        self.index = index
        self.directory = directory

    def share(self) -> None:
        """Write this worker's metrics where the others read them (atomically)."""
        path = self.directory / f"worker-{self.index}.prom"
        partial = path.with_suffix(".partial")
        partial.write_bytes(self._render())
        partial.replace(path)

    def render(self) -> bytes:
        """Every worker's metrics, one family each, samples labelled by worker."""
        self.share()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Merged(self.directory))
        return generate_latest(registry)


class _Merged:
    """A collector of the families in the workers' files, samples labelled by worker."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for path in sorted(self.directory.glob("worker-*.prom")):
            worker = path.stem.removeprefix("worker-")
            try:
                text = path.read_text()
            except FileNotFoundError:
                continue  # a worker that stopped meanwhile
            for family in text_string_to_metric_families(text):
                into = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                into.samples.extend(_labelled(sample, worker) for sample in family.samples)
        yield from merged.values()


def _labelled(sample: Sample, worker: str) -> Sample:
    return sample._replace(labels={**sample.labels, "worker": worker})


def supervise(argv: Sequence[str], workers: int, host: str, port: int) -> int:
    """Run ``workers`` workers on ``host:port`` until SIGTERM or SIGINT; return the exit code."""
    with tempfile.TemporaryDirectory(prefix="stomp-gateway-workers-") as directory:
        try:
            reservation, port = _reserve(host, port)
        except OSError as exc:
            logger.error("cannot start: %s:%d: %s", host, port, exc.strerror or exc)
            return 1
        try:
            return _Supervisor(argv, workers, port, Path(directory)).run()
        finally:
            reservation.close()


def _reserve(host: str, port: int) -> tuple[socket.socket, int]:
    """
    Bind ``host:port`` with SO_REUSEPORT without listening: port 0 becomes a
    port the workers share, and no other program takes it while they restart.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    reservation = socket.socket(family, socket.SOCK_STREAM)
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reservation.bind((host or "0.0.0.0", port))
    return reservation, int(reservation.getsockname()[1])


class _Supervisor:
    def __init__(self, argv: Sequence[str], workers: int, port: int, directory: Path) -> None:
        self.command = [sys.executable, "-m", "gateway", *argv, "--port", str(port)]
        self.command += ["--workers", "1"]
        self.directory = directory
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.started_at: dict[int, float] = {}
        self.count = workers
        self.stopping: int | None = None  # the signal being passed on

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        for index in range(self.count):
            self._start(index)
        logger.info("supervising %d workers", self.count)
        while self.stopping is None:
            time.sleep(POLL)
            self._restart_exited()
        codes = [process.wait() for process in self.processes.values()]
        logger.info("all workers stopped: exit codes %s", codes)
        return 0 if all(code == 0 for code in codes) else 1

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.stopping is not None:
            return  # passed on already; the workers' own second-signal rule applies
        self.stopping = signum
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signum)

    def _start(self, index: int) -> None:
        environment = {**os.environ, WORKER_ENV: f"{index}:{self.directory}"}
        # A session of its own: a terminal's Ctrl-C reaches the supervisor only, which
        # passes it on once (twice would make a worker exit without draining).
        process = subprocess.Popen(
            self.command, env=environment, preexec_fn=_die_with_parent, start_new_session=True
        )
        self.processes[index] = process
        self.started_at[index] = time.monotonic()
        logger.info("worker %d started: pid %d", index, process.pid)

    def _restart_exited(self) -> None:
        for index, process in list(self.processes.items()):
            code = process.poll()
            if code is None or self.stopping is not None:
                continue
            if code == 1 and time.monotonic() - self.started_at[index] < STARTUP_SECONDS:
                logger.error("worker %d could not start: stopping every worker", index)
                self._on_signal(signal.SIGTERM, None)
                return
            logger.error("worker %d (pid %d) exited with %d: restarting", index, process.pid, code)
            (self.directory / f"worker-{index}.prom").unlink(missing_ok=True)
            time.sleep(RESTART_PAUSE)  # a worker that cannot start must not spin
            if self.stopping is None:
                self._start(index)


def _die_with_parent() -> None:
    """A worker gets SIGTERM when the supervisor dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
