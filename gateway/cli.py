"""The ``stomp-gateway`` command."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from kafka_bridge import BusError

from .app import Gateway
from .collector import tune_collector
from .config import Config, parse_command_line, printable_config
from .logs import configure_logging
from .workers import supervise, worker_identity

__all__ = ["main", "run"]

logger = logging.getLogger("gateway")


async def run(config: Config) -> int:
    """
    Serve until SIGINT or SIGTERM, then shut down gracefully; return the exit code.

    SIGTERM (a restart: Docker, Kubernetes) drains for ``--drain-period``
    first; SIGINT (Ctrl-C) shuts down at once.
    """
    gateway = Gateway(config, worker=worker_identity())
    try:
        await gateway.start()  # on failure, it has released what it started
    except (OSError, BusError) as exc:
        logger.error("cannot start: %s", exc)
        return 1
    tune_collector()
    stop = asyncio.Event()
    received: list[int] = []
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            logger.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        logger.info("%s received: shutting down", signal.Signals(signum).name)
        received.append(signum)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    await stop.wait()
    if received[0] == signal.SIGTERM:
        await gateway.drain()
    else:
        await gateway.shutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the configuration, run the gateway, and return the exit code."""
    config, print_config = parse_command_line(argv)
    if print_config:
        print(printable_config(config))
        return 0
    configure_logging(config.log_level, config.log_format)
    if config.workers > 1:
        arguments = sys.argv[1:] if argv is None else list(argv)
        return supervise(arguments, config.workers, config.host, config.port)
    with asyncio.Runner(loop_factory=event_loop_factory(config.event_loop)) as runner:
        return runner.run(run(config))


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """
    The event loop ``--event-loop`` asks for: uvloop (libuv, a few times less
    overhead per socket operation), asyncio's own, or uvloop when installed.
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SystemExit("--event-loop uvloop: uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
