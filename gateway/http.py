"""
Plain HTTP on the WebSocket port: health, metrics, the chat history API, the
demo page and SockJS's info resource.

``websockets`` reads GET requests only; :class:`GatewayConnection` rewrites
any other request line to GET and names the real method in a header, so
:meth:`HttpApi.process_request` can answer it (CORS preflights with 204, the
rest with 405) instead of the client seeing a bare 400.
"""

from __future__ import annotations

import http
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from persistence import MessageStore, StoreError

from .http_responses import error_response, json_response, plain_response, preflight_response
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .routing import RoutingError, parse_room_id
from .sockjs import Route, info_response, route
from .static_files import load_static_files

__all__ = ["GatewayConnection", "HttpApi"]

_HISTORY = re.compile(r"/v1/api/chat/([^/]+)")
_CATCH_UP = re.compile(r"/v1/api/chat/([^/]+)/messages")
_OBJECT_ID = re.compile(r"[0-9a-f]{24}")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
METHOD_HEADER = "X-Stomp-Gateway-Method"
_MAX_REQUEST_LINE = 8192


class GatewayConnection(ServerConnection):
    """A ``websockets`` connection whose first request may use any method."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request_line: bytes | None = b""

    def data_received(self, data: bytes) -> None:
        if self._request_line is None:
            super().data_received(data)
            return
        self._request_line += data
        end = self._request_line.find(b"\r\n")
        if end < 0 and len(self._request_line) < _MAX_REQUEST_LINE:
            return
        head, self._request_line = self._request_line, None
        method, space, rest = head.partition(b" ")
        if space and method != b"GET" and method.isalpha() and method.isupper():
            target, eol, headers = rest.partition(b"\r\n")
            head = b"GET " + target + eol + METHOD_HEADER.encode() + b": " + method + b"\r\n"
            head += headers
        super().data_received(head)


class BadRequest(ValueError):
    """A request parameter is invalid; the message says which and why."""


class HttpApi:
    """
    Answers the HTTP requests that are not WebSocket handshakes.

    Args:
        endpoints: Paths served as STOMP over WebSocket (and SockJS).
        store: The chat history.
        demo_page: Whether to serve the demo chat page.
        readiness: Returns None when the gateway can serve, else why not.
        metrics: Returns the metrics in Prometheus text format.

    Attributes:
        draining: Set on SIGTERM: ``/readyz`` and WebSocket handshakes answer 503.
        serving: Cleared at shutdown: ``/healthz`` answers 503 too.

    """

    def __init__(
        self,
        endpoints: tuple[str, ...],
        store: MessageStore,
        *,
        demo_page: bool,
        readiness: Callable[[], Awaitable[str | None]],
        metrics: Callable[[], bytes],
    ) -> None:
        self.endpoints = frozenset(endpoints)
        self.store = store
        self.readiness = readiness
        self.metrics = metrics
        self.draining = False
        self.serving = True
        self.static = load_static_files(endpoints[0]) if demo_page else {}

    def route(self, path: str) -> Route | None:
        """Return what a request path under a STOMP endpoint is."""
        return route(urllib.parse.urlsplit(path).path, self.endpoints)

    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        url = urllib.parse.urlsplit(request.path)
        method = request.headers.get(METHOD_HEADER, "GET")
        if method == "OPTIONS":
            return preflight_response(
                request.headers.get("Origin"),
                request.headers.get("Access-Control-Request-Headers"),
            )
        if method != "GET":
            return error_response(
                http.HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not served here; use GET"
            )
        kind = route(url.path, self.endpoints)
        if kind in (Route.RAW, Route.SOCKJS):
            if self.draining:  # clients retry elsewhere (a proxy moves on to the next upstream)
                return error_response(http.HTTPStatus.SERVICE_UNAVAILABLE, "draining")
            return None  # a WebSocket handshake; websockets answers 426 to others
        if kind is Route.INFO:
            return info_response(request.headers.get("Origin"))
        if kind is Route.FALLBACK:
            return error_response(
                http.HTTPStatus.NOT_FOUND,
                "SockJS HTTP fallback transports are not served; use the websocket transport",
            )
        return await self._resource(url)

    async def _resource(self, url: urllib.parse.SplitResult) -> Response:
        if url.path == "/healthz":
            if self.serving:
                return json_response(http.HTTPStatus.OK, {"status": "ok"})
            return error_response(http.HTTPStatus.SERVICE_UNAVAILABLE, "shutting down")
        if url.path == "/readyz":
            reason = "draining" if self.draining else await self.readiness()
            if reason is None:
                return json_response(http.HTTPStatus.OK, {"status": "ready"})
            return error_response(http.HTTPStatus.SERVICE_UNAVAILABLE, reason)
        if url.path == "/metrics":
            return plain_response(http.HTTPStatus.OK, self.metrics(), METRICS_CONTENT_TYPE)
        static = self.static.get(url.path)
        if static is not None:
            headers = [("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff")]
            return plain_response(http.HTTPStatus.OK, static.body, static.content_type, headers)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            if match := _HISTORY.fullmatch(url.path):
                return await self._history(_room(match[1]), query)
            if match := _CATCH_UP.fullmatch(url.path):
                return await self._catch_up(_room(match[1]), query)
        except BadRequest as exc:
            return error_response(http.HTTPStatus.BAD_REQUEST, str(exc))
        except StoreError as exc:
            return error_response(http.HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        return error_response(http.HTTPStatus.NOT_FOUND, f"no resource at {url.path}")

    async def _history(self, room_id: int, query: dict[str, list[str]]) -> Response:
        messages = await self.store.history(
            room_id, before=_message_id(query, "before"), limit=_limit(query)
        )
        return json_response(http.HTTPStatus.OK, [message.to_dict() for message in messages])

    async def _catch_up(self, room_id: int, query: dict[str, list[str]]) -> Response:
        after = _message_id(query, "after")
        if after is None:
            raise BadRequest("after is required: the id of the last message the client has")
        messages = await self.store.after(room_id, after, _limit(query))
        if messages is None:
            return error_response(
                http.HTTPStatus.NOT_FOUND, f"unknown message {after}: reload the history"
            )
        return json_response(http.HTTPStatus.OK, [message.to_dict() for message in messages])


def _room(text: str) -> int:
    try:
        return parse_room_id(text)
    except RoutingError as exc:
        raise BadRequest(str(exc)) from None


def _message_id(query: dict[str, list[str]], name: str) -> str | None:
    value = _single(query, name)
    if value is not None and not _OBJECT_ID.fullmatch(value):
        raise BadRequest(f"{name} must be a message id (24 lowercase hex digits)")
    return value


def _single(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise BadRequest(f"{name} given more than once")
    return values[0]


def _limit(query: dict[str, list[str]]) -> int:
    text = _single(query, "limit")
    if text is None:
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(text)
