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


async def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET ``path`` from 127.0.0.1:``port``; return the status and the body."""

    async def get() -> tuple[int, str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            writer.write(request.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            length = next(
                (
                    int(v)
                    for k, _, v in (x.partition(":") for x in lines[1:])
                    if k.strip().lower() == "content-length"
                ),
                None,
            )
            body = await (reader.readexactly(length) if length is not None else reader.read())
            return status, body.decode(errors="replace")
        finally:
            writer.close()

    return await asyncio.wait_for(get(), timeout)
