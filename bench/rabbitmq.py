"""
A private RabbitMQ node with Web-STOMP, for the side-by-side benchmark.

It runs Debian's ``rabbitmq-server`` (``apt-get install rabbitmq-server``) as a
throwaway node: its own name, data and logs in a temporary directory, its own
epmd, free ports, only the ``rabbitmq_web_stomp`` plugin, guest/guest. It is
stopped (and its epmd with it) when the context ends.

    .venv/bin/python bench/rabbitmq.py   # start one, print its Web-STOMP URL, stop on Enter
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
# One scheduler for its one core, and no busy-waiting when idle (it would show as CPU).
ERL_ARGS = "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none"


@dataclasses.dataclass
class RabbitMQ:
    web_stomp_port: int
    pid: int  # the Erlang VM (beam), for RSS and CPU


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def installed() -> bool:
    return Path(SERVER).exists()


@contextlib.contextmanager
def rabbitmq(prefix: Sequence[str] = (), log_dir: Path | None = None) -> Iterator[RabbitMQ]:
    """
    Start a private node under ``prefix`` (e.g. ``taskset -c 0``); stop it at
    the end, then copy its logs into ``log_dir`` if given.
    """
    if not installed():
        raise SystemExit("RabbitMQ is not installed: apt-get install -y rabbitmq-server")
    with tempfile.TemporaryDirectory(prefix="bench-rabbitmq-") as tmp:
        base = Path(tmp)
        web_stomp, epmd = free_port(), free_port()
        (base / "enabled_plugins").write_text("[rabbitmq_web_stomp].\n")
        (base / "rabbitmq.conf").write_text(
            f"web_stomp.tcp.port = {web_stomp}\n"
            f"stomp.listeners.tcp.1 = 127.0.0.1:{free_port()}\n"
            "loopback_users.guest = true\n"
            # Cowboy closes a WebSocket that has received nothing for 60 s
            # (cowboy_websocket idle_timeout): subscribers without heart-beats
            # (fanout) were cut off mid-burst. STOMP heart-beats are the
            # liveness check here, as in the gateway: one hour is "never".
            "web_stomp.ws_opts.idle_timeout = 3600000\n"
        )
        env = (
            os.environ
            | {
                "HOME": tmp,  # the Erlang cookie
                "RABBITMQ_NODENAME": f"bench-{uuid.uuid4().hex[:8]}@localhost",
                "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
                "RABBITMQ_NODE_PORT": str(free_port()),
                "RABBITMQ_DIST_PORT": str(free_port()),
                "ERL_EPMD_PORT": str(epmd),
                "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(base / "log"),
                "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": ERL_ARGS,
            }
        )
        log = (base / "server.log").open("wb")
        process = subprocess.Popen(
            [*prefix, SERVER], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp
        )
        try:
            pid = _wait_ready(process, base, web_stomp)
            yield RabbitMQ(web_stomp, pid)
        except BaseException:
            sys.stderr.write((base / "server.log").read_text(errors="replace")[-3000:])
            raise
        finally:
            subprocess.run([CTL, "stop"], env=env, capture_output=True, check=False, timeout=60)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            epmd_bin = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
            subprocess.run([epmd_bin, "-kill"], env=env, capture_output=True, check=False)
            log.close()
            if log_dir is not None:
                shutil.copytree(base / "log", log_dir / "rabbitmq", dirs_exist_ok=True)


def _wait_ready(process: subprocess.Popen[bytes], base: Path, port: int) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rabbitmq-server exited with {process.returncode}")
        pid_file = base / "rabbit.pid"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            if pid_file.exists() and pid_file.read_text().strip():
                return int(pid_file.read_text())
        time.sleep(0.2)
    raise RuntimeError("RabbitMQ Web-STOMP not listening after 120 s")


if __name__ == "__main__":
    with rabbitmq() as node:
        print(f"ws://127.0.0.1:{node.web_stomp_port}/ws (pid {node.pid}); Enter stops it")
        sys.stdin.readline()
