"""
Fuzz a live gateway for a time budget: random hostile sessions, only documented errors.

    .venv/bin/python fuzz/gateway.py --seconds 600 [--seed N]

Starts an in-process gateway (authentication on, room authorization from the
token's claim, a 1 s CONNECT timeout) and runs ``tests/support/fuzzing.py``
against it; prints what the rounds saw, and fails on any frame that does not
parse, an ERROR whose message is not documented, a frame after an ERROR, or a
canary session that stops answering.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway import Config, Gateway
from tests.support.fuzzing import fuzz_gateway
from tests.support.tokens import SECRET


async def main(seconds: float, seed: int) -> None:
    gateway = Gateway(
        Config(port=0, jwt_secret=SECRET, room_authorization="claim", connect_timeout=1.0)
    )
    await gateway.start()
    try:
        report = await fuzz_gateway(gateway.port, seconds, seed)
    finally:
        await gateway.shutdown()
    print(f"seed {seed}: {report}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget")
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.seed))
