"""Unit tests for :mod:`gateway.security.authorization` against a tiny local HTTP server."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.security.authorization import ClaimAuthorizer, HttpAuthorizer
from gateway.security.identity import Member
from protocol import Command
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import StompTestClient
from tests.support.tokens import SECRET, bearer, hs256


class Backend:
    """An HTTP/1.1 server answering each GET with ``answer(memberId, roomId)``."""

    def __init__(self, answer: Callable[[int, int], int | None]) -> None:
        self.answer = answer
        self.asked: list[tuple[int, int]] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/internal/rooms/access?source=chat"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        target = head.split(b" ")[1].decode()
        url = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(url.query)
        assert url.path == "/internal/rooms/access"
        assert query["source"] == ["chat"]
        key = (int(query["memberId"][0]), int(query["roomId"][0]))
        self.asked.append(key)
        status = self.answer(*key)
        if status is None:  # never answer
            await asyncio.sleep(3600)
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    """Member 7 may use room 4; room 5 fails; room 6 never answers; others are denied."""
    answers = {4: 200, 5: 500, 6: None}
    backend = Backend(lambda member, room: answers.get(room, 403) if member == 7 else 403)
    backend.server = await asyncio.start_server(backend.handle, "127.0.0.1", 0)
    yield backend
    backend.server.close()


async def test_http_answers_allow_deny_and_fail_closed(backend: Backend) -> None:
    authorizer = HttpAuthorizer(backend.url, cache_seconds=0, timeout=0.5)
    member = Member(7)
    assert await authorizer.allowed(member, 4) is True
    assert await authorizer.allowed(member, 3) is False  # 403
    assert await authorizer.allowed(member, 5) is False  # 500: fail closed
    assert await authorizer.allowed(member, 6) is False  # timeout: fail closed
    assert await authorizer.allowed(Member(8), 4) is False
    assert backend.asked == [(7, 4), (7, 3), (7, 5), (7, 6), (8, 4)]


async def test_http_answers_are_cached_but_failures_are_not(backend: Backend) -> None:
    authorizer = HttpAuthorizer(backend.url, cache_seconds=60, timeout=0.5)
    for _ in range(3):
        assert await authorizer.allowed(Member(7), 4) is True
        assert await authorizer.allowed(Member(7), 3) is False
        assert await authorizer.allowed(Member(7), 5) is False
    assert backend.asked == [(7, 4), (7, 3), (7, 5), (7, 5), (7, 5)]


async def test_an_unreachable_backend_denies() -> None:
    authorizer = HttpAuthorizer("http://127.0.0.1:9/", cache_seconds=10, timeout=0.5)
    assert await authorizer.allowed(Member(7), 4) is False


async def test_claim_allows_only_the_listed_rooms() -> None:
    authorizer = ClaimAuthorizer()
    assert await authorizer.allowed(Member(7, rooms=frozenset({4})), 4) is True
    assert await authorizer.allowed(Member(7, rooms=frozenset({4})), 5) is False
    assert await authorizer.allowed(Member(7), 4) is False  # the token lists no rooms


async def test_the_gateway_asks_the_backend_on_subscribe_and_send(
    backend: Backend, make_gateway: GatewayFactory, clients: list[StompTestClient]
) -> None:
    gateway = await make_gateway(
        jwt_secret=SECRET,
        room_authorization="http",
        room_authorization_url=backend.url,
        room_authorization_timeout=0.5,
    )
    client = await StompTestClient.open(gateway.port)
    clients.append(client)
    await client.connect("1.2", headers=[bearer(hs256(7, nickname="kim"))])
    await client.subscribe("/user/queue/errors", "errors")
    await client.subscribe("/sub/chat/4", "room-4")
    await client.send_chat(4, b'{"message":"hi"}')
    assert json.loads((await client.expect(Command.MESSAGE)).body)["memberId"] == 7
    for room in (3, 5, 6):  # denied, failing, silent
        await client.send(
            "SUBSCRIBE", [("id", f"room-{room}"), ("destination", f"/sub/chat/{room}")]
        )
        error = await client.expect(Command.MESSAGE)
        assert error.get("message") == f"not a member of room {room}"
    await client.send("SEND", [("destination", "/pub/chat/3")], b'{"message":"hi"}')
    assert (await client.expect(Command.MESSAGE)).get("message") == "not a member of room 3"
    assert backend.asked.count((7, 4)) == 1  # cached for the SEND
