"""
The SockJS server side of the WebSocket transport, on every STOMP endpoint.

``sockjs-client`` first reads ``{endpoint}/info``, then opens
``{endpoint}/{server}/{session}/websocket``; ``{endpoint}/websocket`` and
``{endpoint}`` itself are raw STOMP over WebSocket. The HTTP fallback
transports (xhr, eventsource, htmlfile, jsonp) are answered with a clear 404:
``websockets`` serves GET requests only, and every current browser and Node
client uses the WebSocket transport.
"""

from __future__ import annotations

import enum
import re
import secrets

__all__ = ["Route", "info", "route"]

# SockJS protocol 0.3.3: server and session ids are strings without dots.
_SESSION = re.compile(r"/([^/.]+)/([^/.]+)/([a-z_]+)")


class Route(enum.Enum):
    """What a path under a STOMP endpoint is."""

    RAW = "raw STOMP over WebSocket"
    SOCKJS = "SockJS WebSocket transport"
    INFO = "SockJS info"
    FALLBACK = "SockJS HTTP fallback transport"


def route(path: str, endpoints: frozenset[str]) -> Route | None:
    """Return what ``path`` is, or None when it is under no endpoint."""
    if path in endpoints:
        return Route.RAW
    endpoint, _, rest = path.rpartition("/")
    if endpoint in endpoints:
        if rest == "websocket":
            return Route.RAW
        if rest == "info":
            return Route.INFO
    for endpoint in endpoints:
        if path.startswith(endpoint + "/"):
            match = _SESSION.fullmatch(path[len(endpoint) :])
            if match is not None:
                return Route.SOCKJS if match[3] == "websocket" else Route.FALLBACK
    return None


def info() -> dict[str, object]:
    """
    The JSON answer to ``GET {endpoint}/info`` (SockJS protocol 0.3.3, "Info");
    the CORS grant with credentials it needs is added as to every HTTP answer.
    """
    return {
        "websocket": True,
        "origins": ["*:*"],
        "cookie_needed": False,
        "entropy": secrets.randbits(32),
    }
