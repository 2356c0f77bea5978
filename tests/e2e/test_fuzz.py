"""
Hostile input against a live gateway (see ``fuzzing.py``): a few seconds of
random STOMP sessions, and hypothesis' hostile values at every surface.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings

from gateway import Config, Gateway
from protocol import Command
from tests.support.fuzzing import (
    SERVICE_TOKEN,
    TOKEN,
    Outcome,
    Surface,
    fuzz_gateway,
    hostile_inputs,
    send_hostile,
)
from tests.support.servers import UNLIMITED_SENDS, GatewayFactory
from tests.support.stomp_client import StompTestClient
from tests.support.tokens import SECRET, bearer

T = TypeVar("T")


async def test_random_sessions_get_only_documented_errors(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(jwt_secret=SECRET, room_authorization="claim", connect_timeout=1.0)
    report = await fuzz_gateway(gateway.port, seconds=4.0, seed=20261127)
    print(f"\n{report}")
    assert report.rounds > 5
    assert report.errors  # the streams do reach the error paths


# Hostile values (hypothesis) at every surface of a gateway running in a
# thread of its own, so that the examples themselves may be synchronous.


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclasses.dataclass
class ThreadedGateway:
    """A gateway and a canary session on an event loop in another thread."""

    loop: asyncio.AbstractEventLoop
    gateway: Gateway
    canary: StompTestClient
    log: _Captured

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def check(self, surface: Surface, outcome: Outcome) -> None:
        """No 5xx, no 1011, no traceback or error in the log, and the canary is served."""
        if surface is Surface.HTTP:
            assert outcome.status is not None, "no HTTP response"
            assert outcome.status < 500, outcome.status
        else:
            assert outcome.close_code != 1011, outcome
            assert not any(
                "internal error" in str(message) or "c[1011" in str(message)
                for message in outcome.messages
            ), outcome.messages
        self.run(self._ping())
        problems = [r for r in self.log.records if r.exc_info or r.levelno >= logging.ERROR]
        assert not problems, [r.getMessage()[:200] for r in problems]
        assert all("\n" not in r.getMessage() for r in self.log.records)

    async def _ping(self) -> None:
        await self.canary.send("SEND", [("destination", "/pub/ping")], b"ping")
        assert (await self.canary.expect(Command.MESSAGE)).body == b"pong"


@pytest.fixture(scope="module")
def threaded_gateway() -> Iterator[ThreadedGateway]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway", daemon=True)
    thread.start()
    log = _Captured()
    logging.getLogger().addHandler(log)

    async def start() -> tuple[Gateway, StompTestClient]:
        gateway = Gateway(
            Config(
                port=0,
                jwt_secret=SECRET,
                room_authorization="claim",
                service_token=SERVICE_TOKEN,
                **UNLIMITED_SENDS,
            )
        )
        await gateway.start()
        canary = await StompTestClient.open(gateway.port)
        await canary.connect("1.2", headers=[bearer(TOKEN)])
        await canary.subscribe("/sub/pong", "pong")
        return gateway, canary

    gateway, canary = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=60)
    yield ThreadedGateway(loop, gateway, canary, log)

    async def stop() -> None:
        await canary.close()
        await gateway.shutdown()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=60)
    logging.getLogger().removeHandler(log)
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


def _hostile_test(surface: Surface) -> Callable[[ThreadedGateway], None]:
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hostile=hostile_inputs(surface))
    def test(threaded_gateway: ThreadedGateway, hostile: tuple[bytes, bytes]) -> None:
        port = threaded_gateway.gateway.port
        threaded_gateway.log.records.clear()  # each example answers for its own log
        outcome = threaded_gateway.run(send_hostile(port, surface, *hostile))
        threaded_gateway.check(surface, outcome)

    return test


EXAMPLES = 60
test_hostile_values_over_stomp = _hostile_test(Surface.STOMP)
test_hostile_values_over_sockjs = _hostile_test(Surface.SOCKJS)
test_hostile_values_over_http = _hostile_test(Surface.HTTP)
