"""The plain HTTP side of the gateway: health, the chat history API, 404 and 426."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from gateway import Gateway
from tests.support.servers import UNLIMITED_SENDS, GatewayFactory
from tests.support.stomp_client import StompTestClient, chat_body, frame_bytes

HUGE = "9" * 5000  # digits


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type") == "application/json", self.headers
        return json.loads(self.body)


def _get(port: int, path: str) -> Reply:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            headers = {key.lower(): value for key, value in response.headers.items()}
            return Reply(response.status, headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            headers = {key.lower(): value for key, value in error.headers.items()}
            return Reply(error.code, headers, error.read())


async def get(gateway: Gateway, path: str) -> Reply:
    """GET ``path`` from the gateway with urllib, in a thread."""
    return await asyncio.to_thread(_get, gateway.port, path)


async def post_messages(gateway: Gateway, room: int, texts: list[str]) -> None:
    """SEND ``texts`` to the room over STOMP and wait until the store has them."""
    client = await StompTestClient.open(gateway.port)
    try:
        await client.connect("1.2")
        frames = [
            frame_bytes("SEND", [("destination", f"/pub/chat/{room}")], chat_body(text))
            for text in texts
        ]
        for start in range(0, len(frames), 200):
            await client.send_raw(b"".join(frames[start : start + 200]))
        await client.barrier()
    finally:
        await client.close()
    deadline = time.monotonic() + 5
    while gateway.persister.lag:
        assert time.monotonic() < deadline, "the persister did not catch up"
        await asyncio.sleep(0.01)


async def history(gateway: Gateway, room: int | str, query: str = "") -> list[dict[str, Any]]:
    reply = await get(gateway, f"/v1/api/chat/{room}{query}")
    assert reply.status == 200, reply
    messages: list[dict[str, Any]] = reply.json()
    return messages


async def test_healthz(gateway: Gateway) -> None:
    reply = await get(gateway, "/healthz")
    assert reply.status == 200
    assert reply.json() == {"status": "ok"}
    assert reply.headers["access-control-allow-origin"] == "*"
    assert reply.headers["cache-control"] == "no-store"
    assert reply.headers["content-length"] == str(len(reply.body))
    assert (await get(gateway, "/healthz?verbose=1")).status == 200


async def test_healthz_while_shutting_down(gateway: Gateway) -> None:
    gateway.http.serving = False  # what shutdown() does before it stops listening
    reply = await get(gateway, "/healthz")
    assert reply.status == 503
    assert reply.json()["status"] == 503


async def test_history_of_an_empty_room(gateway: Gateway) -> None:
    assert await history(gateway, 12345) == []


async def test_history_matches_the_messages(gateway: Gateway) -> None:
    client = await StompTestClient.open(gateway.port)
    await client.connect("1.2")
    await client.subscribe("/sub/chat/4")
    texts = ["첫 번째", "second 😀", "third"]
    for text in texts:
        await client.send_chat(4, chat_body(text))
    bodies = [json.loads((await client.read_frame()).body) for _ in texts]
    await client.close()
    await post_messages(gateway, 5, ["other room"])
    reply = await get(gateway, "/v1/api/chat/4")
    assert reply.status == 200
    assert reply.json() == bodies  # oldest first, the very JSON subscribers got
    assert "첫 번째".encode() in reply.body  # not \\u-escaped
    assert reply.headers["access-control-allow-origin"] == "*"
    assert [m["message"] for m in await history(gateway, 5)] == ["other room"]


async def test_paging_returns_every_message_once_in_order(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(**UNLIMITED_SENDS)  # one client posts them all
    texts = [f"m{n}" for n in range(250)]
    await post_messages(gateway, 1, texts)
    pages: list[list[dict[str, Any]]] = []
    query = "?limit=100"
    while True:
        page = await history(gateway, 1, query)
        if not page:
            break
        pages.append(page)
        query = f"?limit=100&before={page[0]['id']}"
    assert [len(page) for page in pages] == [100, 100, 50]
    seen = [message["message"] for page in reversed(pages) for message in page]
    assert seen == texts
    ids = [message["id"] for page in reversed(pages) for message in page]
    assert len(set(ids)) == 250


async def test_before_and_limit(gateway: Gateway) -> None:
    texts = [str(n) for n in range(20)]
    await post_messages(gateway, 2, texts)
    everything = await history(gateway, 2, "?limit=1000")
    assert [m["message"] for m in everything] == texts
    cursor = everything[10]["id"]
    older = await history(gateway, 2, f"?before={cursor}&limit=3")
    assert [m["message"] for m in older] == ["7", "8", "9"]  # the newest 3 before "10"
    assert [m["message"] for m in await history(gateway, 2, f"?before={cursor}")] == texts[:10]
    assert await history(gateway, 2, f"?before={everything[0]['id']}") == []
    assert [m["message"] for m in await history(gateway, 2, "?limit=1")] == ["19"]
    # An id the store does not hold: ObjectIds sort by time.
    assert await history(gateway, 2, "?before=" + "f" * 24) == everything
    assert await history(gateway, 2, "?before=" + "0" * 24) == []


async def test_default_and_maximum_limit(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(**UNLIMITED_SENDS)  # one client posts them all
    texts = [str(n) for n in range(150)]
    await post_messages(gateway, 3, texts)
    assert [m["message"] for m in await history(gateway, 3)] == texts[-100:]
    assert [m["message"] for m in await history(gateway, 3, "?limit=1000")] == texts


async def test_history_size(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(history_size=10)
    await post_messages(gateway, 1, [str(n) for n in range(15)])
    assert [m["message"] for m in await history(gateway, 1)] == [str(n) for n in range(5, 15)]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/api/chat/abc",
        "/v1/api/chat/0",
        "/v1/api/chat/-1",
        "/v1/api/chat/01",
        f"/v1/api/chat/{2**63}",
        f"/v1/api/chat/{2**70}",
        "/v1/api/chat/1?limit=0",
        "/v1/api/chat/1?limit=-1",
        "/v1/api/chat/1?limit=abc",
        "/v1/api/chat/1?limit=1001",
        "/v1/api/chat/1?limit=1.5",
        "/v1/api/chat/1?limit=",
        "/v1/api/chat/1?limit=10&limit=20",
        "/v1/api/chat/1?before=xyz",
        "/v1/api/chat/1?before=",
        "/v1/api/chat/1?before=" + "A" * 24,
        "/v1/api/chat/1?before=" + "a" * 23,
        "/v1/api/chat/1?before=" + "a" * 25,
        f"/v1/api/chat/1?before={'a' * 24}&before={'b' * 24}",
        # Numbers past int()'s 4,300 digits.
        f"/v1/api/chat/{HUGE}",
        f"/v1/api/chat/{HUGE}/messages?after={'a' * 24}",
        f"/v1/api/chat/1?limit={HUGE}",
        f"/v1/api/chat/{HUGE}/presence",
        f"/v1/api/chat/last/message?rooms=1,{HUGE}",
        f"/v1/api/chat/last/connect?memberId={HUGE}",
        # Member ids are Java longs: 2^63 has 19 digits yet no BSON integer holds it.
        f"/v1/api/chat/last/connect?memberId={2**63}",
        f"/v1/api/chat/last/connect?memberId={10**19 - 1}",
    ],
)
async def test_bad_request(gateway: Gateway, path: str) -> None:
    reply = await get(gateway, path)
    assert reply.status == 400
    payload = reply.json()
    assert payload["status"] == 400
    assert isinstance(payload["error"], str)
    assert payload["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/static/",
        "/static/nope.js",
        "/v1/api/chat",
        "/v1/api/chat/",
        "/v1/api/chat/1/",
        "/v1/api/chat/1/extra",
        "/healthz/more",
        "/ws/extra",
        "/V1/api/chat/1",
    ],
)
async def test_not_found(gateway: Gateway, path: str) -> None:
    reply = await get(gateway, path)
    assert reply.status == 404
    payload = reply.json()
    assert payload["status"] == 404
    assert payload["error"]


async def test_demo_page_is_served_at_the_root_with_the_endpoint(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(endpoint=("/wss", "/ws"))
    reply = await get(gateway, "/")
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert b'<meta name="stomp-endpoint" content="/wss">' in reply.body


async def test_demo_page_can_be_turned_off(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(demo_page=False)
    assert (await get(gateway, "/")).status == 404


async def test_plain_get_on_the_endpoint(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(endpoint=("/ws", "/stomp"))
    for path in ("/ws", "/stomp", "/ws?x=1"):
        reply = await get(gateway, path)
        assert reply.status == 426, path
        assert reply.headers["upgrade"].lower() == "websocket"


async def test_raw_http_request(gateway: Gateway) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(b"GET /v1/api/chat/9?limit=5 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Type: application/json\r\n" in head
    assert body == b"[]"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Hostile: \0\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Hostile: a\rb\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n",
        b"GET /v1/api/chat/\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
        b"GET /v1/api/chat/\n HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\xff\xfe garbage\r\n\r\n",
        b"POST /v1/api/chat/4/messages HTTP/1.1\r\nX: \0\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ids=[
        "nul-in-field",
        "cr-in-field",
        "field-without-colon",
        "non-ascii-target",
        "http-2.0",
        "lf-in-target",
        "garbage",
        "nul-in-post-field",
    ],
)
async def test_a_malformed_request_head_is_answered_400(
    gateway: Gateway, request_bytes: bytes
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(request_bytes)
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), response
    assert json.loads(body)["error"].startswith("malformed request head: ")


async def test_a_method_header_sent_by_a_client_is_not_believed(gateway: Gateway) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(b"GET /v1/api/chat/4 HTTP/1.1\r\nHost: x\r\nX-Stomp-Gateway-Method: POST\r\n\r\n")
    status = await reader.readline()
    writer.close()
    assert status.startswith(b"HTTP/1.1 200")
