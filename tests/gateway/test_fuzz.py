"""A few seconds of random hostile sessions against a live gateway (see ``fuzzing.py``)."""

from __future__ import annotations

from tests.conftest import GatewayFactory

from .fuzzing import fuzz_gateway
from .tokens import SECRET


async def test_random_sessions_get_only_documented_errors(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(jwt_secret=SECRET, room_authorization="claim", connect_timeout=1.0)
    report = await fuzz_gateway(gateway.port, seconds=4.0, seed=20261127)
    print(f"\n{report}")
    assert report.rounds > 5
    assert report.errors  # the streams do reach the error paths
