"""
Plain HTTP on the WebSocket port: health, metrics, the chat history API, the
backend resources (:mod:`gateway.http.backend`), the demo page and SockJS's info
resource.

``websockets`` reads GET requests without bodies only; :class:`GatewayConnection`
reads the body of other requests, rewrites their request line to GET and
remembers the real method, so :meth:`HttpApi.process_request` can answer
them (a POST of a message, CORS preflights with 204, the rest with 405)
instead of the client seeing a bare 400. Every answer carries the CORS grant
of :class:`~gateway.http.responses.Cors`; the chat resources read what the
caller may (:class:`~gateway.security.access.Access`).
"""

from __future__ import annotations

import http
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import SecurityError
from websockets.http11 import Request, Response
from websockets.streams import StreamReader

from gateway.chat.ids import OBJECT_ID
from gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.numbers import saturating_int
from gateway.security.access import Access, Caller
from gateway.transport import sockjs
from gateway.transport.sockjs import Route, route
from gateway.transport.websocket import StompWebSocket, hand_request
from persistence import MessageStore, StoreError

from .backend import BackendApi, BodyError
from .params import room_id, single
from .responses import Cors, Refused, error_response, json_response, plain_response
from .static import load_static_files

__all__ = ["GatewayConnection", "HttpApi", "single_header"]

_CHAT_API = "/v1/api/chat/"
_HISTORY = re.compile(r"/v1/api/chat/([^/]+)")
_CATCH_UP = re.compile(r"/v1/api/chat/([^/]+)/messages")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_MAX_REQUEST_LINE = 8192
_MAX_HEAD = 64 * 1024
_BODY_FIELDS = (b"content-length", b"transfer-encoding")
_BODY_METHODS = (b"POST", b"PUT", b"PATCH")
_CHUNKED = "send the body with a Content-Length: chunked transfer coding is not read"
_REASONS = {
    http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "request head larger than 64 KiB",
    http.HTTPStatus.LENGTH_REQUIRED: "send the body with a Content-Length",
    http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "body larger than {} bytes (--max-frame-size)",
}


class GatewayConnection(StompWebSocket):
    """
    A ``websockets`` connection whose request may use any method and carry a body.

    ``websockets`` reads no request body (``http11.Request.parse`` refuses
    Transfer-Encoding and a non-zero Content-Length). For any method but GET
    this connection holds the bytes back until the head and its Content-Length
    body are whole, keeps the body in :attr:`body` (or why it could not in
    :attr:`body_error`), and hands ``websockets`` the head rewritten to GET,
    the real method in :attr:`method`, without the body headers.
    Whatever follows is dropped: ``websockets`` closes the connection after
    any response but 101, so such a request is the connection's only one.
    """

    max_body = 64 * 1024  # set per server by :func:`connection_class`
    # Defaults for a GET, set on the instance only for other requests: over 30
    # attributes, an instance's __dict__ stops sharing its keys and grows by 1.3 KiB.
    _passing = True  # whether bytes after the request go to websockets
    method = "GET"  # the request's own method, whatever websockets is shown
    body = b""
    body_error: BodyError | None = None
    head_error: str | None = None  # why websockets could not read the request head

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: bytearray | None = bytearray()  # until the request is whole

    def data_received(self, data: bytes) -> None:
        if self._held is None:
            if self._passing:
                super().data_received(data)
            return
        self._held += data
        request = self._request(self._held)
        if request is not None:
            self._held = None
            super().data_received(self._read_head(request))

    def _read_head(self, request: bytes) -> bytes:
        """
        Read the head of ``request`` once, handing it to ``websockets`` when
        whole; return the bytes websockets is still to be fed.
        """
        reader = StreamReader()
        reader.feed_data(request)
        try:
            next(Request.parse(reader.read_line))
        except StopIteration as read:  # a whole head
            if hand_request(self, read.value):
                return bytes(reader.buffer)  # what followed it
        except SecurityError:  # one websockets answers itself (414, 431)
            pass
        except (EOFError, ValueError, NotImplementedError) as exc:  # EOFError: no CR
            # websockets would close the connection without an answer; RFC 9112 §3
            # and RFC 9110 §5.5: an invalid request line or field value is refused, 400.
            self.head_error, self._passing = f"malformed request head: {str(exc)[:200]}", False
            return b"GET / HTTP/1.1\r\n\r\n"
        return request  # websockets reads it

    def _request(self, held: bytearray) -> bytes | None:
        """Return what to hand to ``websockets`` once known, else None to wait."""
        line_end = held.find(b"\r\n")
        if line_end < 0:
            return bytes(held) if len(held) >= _MAX_REQUEST_LINE else None
        method, space, rest = bytes(held[:line_end]).partition(b" ")
        if method == b"GET" or not (space and method.isalpha() and method.isupper()):
            whole = method != b"GET" or b"\r\n\r\n" in held or len(held) >= _MAX_HEAD
            return bytes(held) if whole else None  # websockets reads it, or refuses it
        self.method = method.decode()
        line = b"GET " + rest + b"\r\n"
        head_end = held.find(b"\r\n\r\n")
        if head_end < 0:
            if len(held) < _MAX_HEAD:
                return None
            return self._hand_on(line, http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        fields = bytes(held[line_end + 2 : head_end + 2]).split(b"\r\n")[:-1]
        kept = [field for field in fields if _field_name(field) not in _BODY_FIELDS]
        head = line + b"".join(field + b"\r\n" for field in kept) + b"\r\n"
        lengths = {_field_value(f) for f in fields if _field_name(f) == b"content-length"}
        if any(_field_name(field) == b"transfer-encoding" for field in fields):
            # RFC 9112 §6.1: a server that does not read chunked bodies answers 411.
            return self._hand_on(head, http.HTTPStatus.LENGTH_REQUIRED, _CHUNKED)
        if not lengths:
            status = http.HTTPStatus.LENGTH_REQUIRED if method in _BODY_METHODS else None
            return self._hand_on(head, status)
        if len(lengths) > 1 or not (length := lengths.pop()).isdigit():
            # RFC 9112 §6.3: an invalid Content-Length is unrecoverable: 400.
            return self._hand_on(head, http.HTTPStatus.BAD_REQUEST, "invalid Content-Length")
        size = saturating_int(length.decode(), self.max_body + 1)
        if size > self.max_body:
            return self._hand_on(head, http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        body_end = head_end + 4 + size
        if len(held) < body_end:
            return None
        self.body = bytes(held[head_end + 4 : body_end])
        self._passing = False
        return head

    def _hand_on(self, head: bytes, status: http.HTTPStatus | None, reason: str = "") -> bytes:
        """Hand ``head`` on without its body (``status``: why the body is refused)."""
        if status is not None:
            self.body_error = (status, reason or _REASONS[status].format(self.max_body))
        self._passing = False
        return head if head.endswith(b"\r\n\r\n") else head + b"\r\n"


def _field_name(field: bytes) -> bytes:
    return field.partition(b":")[0].strip().lower()


def _field_value(field: bytes) -> bytes:
    return field.partition(b":")[2].strip()


def connection_class(max_body: int) -> type[GatewayConnection]:
    """Return a :class:`GatewayConnection` reading bodies up to ``max_body`` bytes."""
    return type("GatewayConnection", (GatewayConnection,), {"max_body": max_body})


class BadRequest(ValueError):
    """A request parameter is invalid; the message says which and why."""


def single_header(request: Request, name: str) -> str | None:
    """
    The value of the request's ``name`` field, None when absent.

    Raises:
        BadRequest: The field is sent more than once (RFC 9110 §5.3: a field
            defined as a single value, as Origin and Authorization are).

    """
    values = request.headers.get_all(name)
    if len(values) > 1:
        raise BadRequest(f"{name} sent more than once")
    return values[0] if values else None


class HttpApi:
    """
    Answers the HTTP requests that are not WebSocket handshakes.

    Args:
        endpoints: Paths served as STOMP over WebSocket (and SockJS).
        store: The chat history.
        demo_page: Whether to serve the demo chat page.
        readiness: Returns None when the gateway can serve, else why not.
        backend: The resources for other services, if served.
        access: Who calls the chat resources, and what they may read.
        cors: The CORS grant every answer carries.
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
        backend: BackendApi | None = None,
        access: Access,
        cors: Cors,
        metrics: Callable[[], bytes],
    ) -> None:
        self.endpoints = frozenset(endpoints)
        self.store = store
        self.backend = backend
        self.access = access
        self.cors = cors
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
        """Answer a plain HTTP request with its CORS grant; None for a handshake."""
        url = urllib.parse.urlsplit(request.path)
        if isinstance(connection, GatewayConnection) and connection.head_error is not None:
            return error_response(http.HTTPStatus.BAD_REQUEST, connection.head_error)
        method = connection.method if isinstance(connection, GatewayConnection) else "GET"
        try:
            origin = single_header(request, "Origin")
        except BadRequest as exc:
            return error_response(http.HTTPStatus.BAD_REQUEST, str(exc))
        if method == "OPTIONS":
            # Fetch standard: Access-Control-Request-Headers is a list; its lines join.
            asked = ", ".join(request.headers.get_all("Access-Control-Request-Headers"))
            return self.cors.preflight(origin, asked or None, self._methods(url))
        response = await self._answer(method, url, connection, request)
        return None if response is None else self.cors.grant(response, origin)

    def _methods(self, url: urllib.parse.SplitResult) -> str:
        """The methods served at ``url`` but OPTIONS, as a preflight lists them."""
        return "GET, POST" if self.backend and _CATCH_UP.fullmatch(url.path) else "GET"

    async def _answer(
        self,
        method: str,
        url: urllib.parse.SplitResult,
        connection: ServerConnection,
        request: Request,
    ) -> Response | None:
        if method == "POST" and self.backend and (match := _CATCH_UP.fullmatch(url.path)):
            return await self._post_message(match[1], connection, request)
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
            return json_response(http.HTTPStatus.OK, sockjs.info())
        if kind is Route.FALLBACK:
            return error_response(
                http.HTTPStatus.NOT_FOUND,
                "SockJS HTTP fallback transports are not served; use the websocket transport",
            )
        return await self._resource(url, request)

    async def _resource(self, url: urllib.parse.SplitResult, request: Request) -> Response:
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
            if url.path.startswith(_CHAT_API):
                caller = self.access.caller(single_header(request, "Authorization"))
                if response := await self._chat(url.path, query, caller):
                    return response
        except BadRequest as exc:
            return error_response(http.HTTPStatus.BAD_REQUEST, str(exc))
        except Refused as exc:
            return exc.response
        except StoreError as exc:
            return error_response(http.HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        return error_response(http.HTTPStatus.NOT_FOUND, f"no resource at {url.path}")

    async def _chat(
        self, path: str, query: dict[str, list[str]], caller: Caller
    ) -> Response | None:
        """Answer a GET of a chat resource for ``caller``; None if ``path`` is not one."""
        if self.backend and (response := await self.backend.get(path, query, caller)):
            return response
        history, catch_up = _HISTORY.fullmatch(path), _CATCH_UP.fullmatch(path)
        match = history or catch_up
        if match is None:
            return None
        room = room_id(match[1])
        await self.access.check_room(caller, room)
        return await (self._history if history else self._catch_up)(room, query)

    async def _post_message(
        self, room: str, connection: ServerConnection, request: Request
    ) -> Response:
        assert self.backend is not None
        body, error = b"", None
        if isinstance(connection, GatewayConnection):
            body, error = connection.body, connection.body_error
        try:
            authorization = single_header(request, "Authorization")
        except BadRequest as exc:
            response = error_response(http.HTTPStatus.BAD_REQUEST, str(exc))
        else:
            response = await self.backend.post_message(room, authorization, body, error)
        response.headers["Connection"] = "close"  # the body ends this connection's reading
        return response

    async def _history(self, room: int, query: dict[str, list[str]]) -> Response:
        messages = await self.store.history(
            room, before=_message_id(query, "before"), limit=_limit(query)
        )
        return json_response(http.HTTPStatus.OK, [message.to_dict() for message in messages])

    async def _catch_up(self, room: int, query: dict[str, list[str]]) -> Response:
        after = _message_id(query, "after")
        if after is None:
            raise BadRequest("after is required: the id of the last message the client has")
        messages = await self.store.after(room, after, _limit(query))
        if messages is None:
            return error_response(
                http.HTTPStatus.NOT_FOUND, f"unknown message {after}: reload the history"
            )
        return json_response(http.HTTPStatus.OK, [message.to_dict() for message in messages])


def _message_id(query: dict[str, list[str]], name: str) -> str | None:
    value = single(query, name)
    if value is not None and not OBJECT_ID.fullmatch(value):
        raise BadRequest(f"{name} must be a message id (24 lowercase hex digits)")
    return value


def _limit(query: dict[str, list[str]]) -> int:
    text = single(query, "limit")
    if text is None:
        return DEFAULT_LIMIT
    limit = saturating_int(text, MAX_LIMIT + 1) if text.isascii() and text.isdigit() else 0
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit
