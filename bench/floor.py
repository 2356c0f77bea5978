"""
The transport floor: a bare ``websockets`` server, no STOMP.

Every WebSocket message a connection sends goes to every other connection,
with ``websockets.broadcast`` (one write per connection, no task). What a
STOMP server does on top of this is the cost the benchmark compares.

    .venv/bin/python -P bench/floor.py --port PORT [--event-loop auto|asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

# -P above: bench/persistence.py must not shadow the package gateway.cli imports.
from gateway.cli import event_loop_factory

connections: set[ServerConnection] = set()


async def forward(websocket: ServerConnection) -> None:
    connections.add(websocket)
    try:
        async for message in websocket:
            broadcast(connections - {websocket}, message)
    except ConnectionClosed:
        pass  # the load generator aborts its connections at the end
    finally:
        connections.discard(websocket)


async def serve_forever(port: int) -> None:
    async with serve(forward, "127.0.0.1", port, compression=None) as server:
        print(f"floor listening on {port}", file=sys.stderr, flush=True)
        await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--event-loop", default="auto", choices=("auto", "asyncio", "uvloop"))
    options = parser.parse_args()
    with asyncio.Runner(loop_factory=event_loop_factory(options.event_loop)) as runner:
        runner.run(serve_forever(options.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
