"""Building plain HTTP responses: JSON, errors, files, refusals and CORS."""

from __future__ import annotations

import http
import json
from collections.abc import Iterable
from typing import Any

from websockets.datastructures import Headers
from websockets.http11 import Response

__all__ = [
    "Cors",
    "Refused",
    "error_response",
    "json_response",
    "plain_response",
]

HeaderItems = Iterable[tuple[str, str]]
_ALLOWED_HEADERS = "authorization, content-type"


def plain_response(
    status: http.HTTPStatus, body: bytes, content_type: str, headers: HeaderItems = ()
) -> Response:
    """Return a response with ``body`` and the given extra headers."""
    all_headers = Headers(
        [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers]
    )
    return Response(status.value, status.phrase, all_headers, body)


def json_response(status: http.HTTPStatus, payload: Any, headers: HeaderItems = ()) -> Response:
    """Return ``payload`` as compact UTF-8 JSON, never cached."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return plain_response(
        status, body, "application/json", [*headers, ("Cache-Control", "no-store")]
    )


def error_response(status: http.HTTPStatus, reason: str) -> Response:
    """Return ``{"status", "error"}`` with the reason a client can act upon."""
    return json_response(status, {"status": status.value, "error": reason})


class Refused(Exception):
    """
    A request is refused: :attr:`response` says why, as :func:`error_response`.

    Args:
        status: The status to answer with.
        reason: What the client can do about it.
        headers: Extra headers, e.g. the ``WWW-Authenticate`` challenge of a 401.

    """

    def __init__(self, status: http.HTTPStatus, reason: str, headers: HeaderItems = ()) -> None:
        super().__init__(reason)
        self.response = error_response(status, reason)
        self.response.headers.update(headers)


class Cors:
    """
    The CORS grant of every plain HTTP answer: the REST resources and SockJS
    ``/info`` alike (Fetch standard, "CORS protocol").

    A page of an allowed origin gets its ``Origin`` echoed with
    ``Access-Control-Allow-Credentials: true``, which requests made with
    credentials (axios ``withCredentials``, fetch ``credentials: 'include'``)
    need: the wildcard ``*`` does not serve them. A request without ``Origin``
    (no browser) or from an opaque origin (``null``) gets ``*``, without
    credentials. A disallowed origin gets no grant, so its page reads nothing.

    Args:
        allowed: The origins granted (``--allowed-origin``); empty: every origin.

    """

    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = frozenset(allowed)

    def allows(self, origin: str | None) -> bool:
        """Whether a browser page of ``origin`` may use the gateway."""
        return not self.allowed or origin in self.allowed

    def grant(self, response: Response, origin: str | None) -> Response:
        """Add the CORS grant for ``origin`` to ``response``; return it."""
        response.headers.update(self._grant(origin))
        return response

    def preflight(
        self, origin: str | None, requested_headers: str | None, methods: str
    ) -> Response:
        """
        Answer a preflight (``OPTIONS``) of a resource served with ``methods``,
        allowing the headers the page asked for, else ``authorization`` and
        ``content-type``; a disallowed origin is allowed nothing.
        """
        grant = self._grant(origin)
        if len(grant) > 1:
            grant += [
                ("Access-Control-Allow-Methods", f"OPTIONS, {methods}"),
                ("Access-Control-Allow-Headers", requested_headers or _ALLOWED_HEADERS),
                ("Access-Control-Max-Age", "31536000"),
                ("Cache-Control", "public, max-age=31536000"),
            ]
        return plain_response(http.HTTPStatus.NO_CONTENT, b"", "text/plain", grant)

    def _grant(self, origin: str | None) -> list[tuple[str, str]]:
        # The grant depends on Origin: caches must key on it.
        vary = ("Vary", "Origin")
        if origin is None or origin == "null":
            return [vary, ("Access-Control-Allow-Origin", "*")]
        if self.allows(origin):
            return [
                vary,
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Credentials", "true"),
            ]
        return [vary]
