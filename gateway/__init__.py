"""The asyncio STOMP over WebSocket gateway: connections, routing, HTTP and the CLI."""

from __future__ import annotations

from .config import Config, parse_args
from .server import Gateway

__all__ = ["Config", "Gateway", "parse_args"]
