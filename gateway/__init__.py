"""The asyncio STOMP over WebSocket gateway: connections, routing, HTTP and the CLI."""

from __future__ import annotations

from .app import Gateway
from .config import Config, parse_args

__all__ = ["Config", "Gateway", "parse_args"]
