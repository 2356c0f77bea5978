"""Building plain HTTP responses: JSON, errors, files and CORS."""

from __future__ import annotations

import http
import json
from collections.abc import Iterable
from typing import Any

from websockets.datastructures import Headers
from websockets.http11 import Response

__all__ = [
    "cors_headers",
    "error_response",
    "json_response",
    "plain_response",
    "preflight_response",
]

HeaderItems = Iterable[tuple[str, str]]


def plain_response(
    status: http.HTTPStatus, body: bytes, content_type: str, headers: HeaderItems = ()
) -> Response:
    """Return a response with ``body`` and the given extra headers."""
    all_headers = Headers(
        [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers]
    )
    return Response(status.value, status.phrase, all_headers, body)


def json_response(
    status: http.HTTPStatus,
    payload: Any,
    headers: HeaderItems = (("Access-Control-Allow-Origin", "*"),),
) -> Response:
    """Return ``payload`` as compact UTF-8 JSON, never cached; readable from any origin."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return plain_response(
        status, body, "application/json", [*headers, ("Cache-Control", "no-store")]
    )


def error_response(status: http.HTTPStatus, reason: str) -> Response:
    """Return ``{"status", "error"}`` with the reason a client can act upon."""
    return json_response(status, {"status": status.value, "error": reason})


def cors_headers(origin: str | None) -> list[tuple[str, str]]:
    """CORS headers allowing ``origin`` with credentials, as SockJS expects."""
    if origin is None or origin == "null":
        return [("Access-Control-Allow-Origin", "*")]
    return [
        ("Access-Control-Allow-Origin", origin),
        ("Access-Control-Allow-Credentials", "true"),
        ("Vary", "Origin"),
    ]


def preflight_response(origin: str | None, requested_headers: str | None) -> Response:
    """Answer a CORS preflight (``OPTIONS``) for the GET resources served here."""
    headers = [
        *cors_headers(origin),
        ("Access-Control-Allow-Methods", "OPTIONS, GET"),
        ("Access-Control-Max-Age", "31536000"),
        ("Cache-Control", "public, max-age=31536000"),
    ]
    if requested_headers:
        headers.append(("Access-Control-Allow-Headers", requested_headers))
    return plain_response(http.HTTPStatus.NO_CONTENT, b"", "text/plain", headers)
