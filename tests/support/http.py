"""Raw HTTP/1.1 requests to the gateway, written by hand as another client would."""

from __future__ import annotations

import asyncio
import json
from typing import Any

TOKEN = "s3rvice-token"  # the --service-token of the tests that post messages


async def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Write ``request`` as is; read the response until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
    return int(status_line.split()[1]), headers, body


def post_request(room: int | str, body: bytes, token: str | None = TOKEN, extra: str = "") -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token is not None else ""
    head = (
        f"POST /v1/api/chat/{room}/messages HTTP/1.1\r\nHost: x\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


async def post(port: int, room: int | str, body: bytes, **kwargs: Any) -> tuple[int, Any]:
    status, headers, raw = await exchange(port, post_request(room, body, **kwargs))
    assert headers["connection"] == "close"
    return status, json.loads(raw)
