"""
Plain HTTP on the WebSocket port: health and the chat history API.

``websockets`` hands every request to :meth:`HttpApi.process_request` before
the handshake; requests for a STOMP endpoint go on to become WebSockets, the
others are answered here.
"""

from __future__ import annotations

import http
import json
import re
import urllib.parse
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from persistence import MessageStore

from .routing import RoutingError, parse_room_id
from .static_files import StaticFile, load_static_files

__all__ = ["HttpApi", "json_response"]

_HISTORY = re.compile(r"/v1/api/chat/([^/]+)")
_OBJECT_ID = re.compile(r"[0-9a-f]{24}")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class BadRequest(ValueError):
    """A request parameter is invalid; the message says which and why."""


def json_response(status: http.HTTPStatus, payload: Any) -> Response:
    """Return a JSON response, readable from any origin."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Access-Control-Allow-Origin", "*"),
            ("Cache-Control", "no-store"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def _file_response(static: StaticFile) -> Response:
    headers = Headers(
        [
            ("Content-Type", static.content_type),
            ("Content-Length", str(len(static.body))),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    )
    return Response(http.HTTPStatus.OK.value, http.HTTPStatus.OK.phrase, headers, static.body)


def _error(status: http.HTTPStatus, reason: str) -> Response:
    return json_response(status, {"status": status.value, "error": reason})


class HttpApi:
    """
    Answers the HTTP requests that are not WebSocket handshakes.

    Args:
        endpoints: Paths served as STOMP over WebSocket.
        store: The chat history.

    """

    def __init__(self, endpoints: tuple[str, ...], store: MessageStore, *, demo_page: bool) -> None:
        self.endpoints = frozenset(endpoints)
        self.store = store
        self.serving = True
        self.static = load_static_files(endpoints[0]) if demo_page else {}

    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        url = urllib.parse.urlsplit(request.path)
        if url.path in self.endpoints:
            return None  # a WebSocket handshake; websockets answers 426 to others
        if url.path == "/healthz":
            if self.serving:
                return json_response(http.HTTPStatus.OK, {"status": "ok"})
            return _error(http.HTTPStatus.SERVICE_UNAVAILABLE, "shutting down")
        static = self.static.get(url.path)
        if static is not None:
            return _file_response(static)
        match = _HISTORY.fullmatch(url.path)
        if match is not None:
            try:
                query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
                return await self._history(match[1], query)
            except BadRequest as exc:
                return _error(http.HTTPStatus.BAD_REQUEST, str(exc))
        return _error(http.HTTPStatus.NOT_FOUND, f"no resource at {url.path}")

    async def _history(self, room: str, query: dict[str, list[str]]) -> Response:
        try:
            room_id = parse_room_id(room)
        except RoutingError as exc:
            raise BadRequest(str(exc)) from None
        limit = _limit(query)
        before = _single(query, "before")
        if before is not None and not _OBJECT_ID.fullmatch(before):
            raise BadRequest("before must be a message id (24 lowercase hex digits)")
        messages = await self.store.history(room_id, before=before, limit=limit)
        return json_response(http.HTTPStatus.OK, [message.to_dict() for message in messages])


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
