"""
The backend resources on one in-memory gateway: posting with the service
token (and the errors), last message per room, last connection per member,
presence, and the CONNECT header that names the member.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from gateway import Gateway
from protocol import Command
from tests.support.http import TOKEN, exchange, http_get, post, post_request
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import StompTestClient, chat_body, connected, payload

HUGE = "9" * 5000  # digits
CREATE_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?")


@pytest.fixture
async def backend(make_gateway: GatewayFactory) -> Gateway:
    return await make_gateway(service_token=TOKEN, member_header="x-member-id")


async def test_posted_message_reaches_subscribers_and_history(
    backend: Gateway, clients: list[StompTestClient]
) -> None:
    subscriber = await connected(backend.port, clients)
    await subscriber.subscribe("/sub/chat/4", "s4")
    sender = await connected(backend.port, clients)
    await sender.send_chat(4, chat_body("from a client"))
    status, message = await post(backend.port, 4, chat_body("from a service", 9, "uploader"))
    assert status == 201
    assert message["chatRoomId"] == 4
    assert message["memberId"] == 9
    assert re.fullmatch(r"[0-9a-f]{24}", message["id"])
    assert CREATE_AT.fullmatch(message["createAt"])
    frames = [await subscriber.expect(Command.MESSAGE) for _ in range(2)]
    assert [payload(f)["message"] for f in frames] == ["from a client", "from a service"]
    assert payload(frames[1]) == message
    _, history = await http_get(backend.port, "/v1/api/chat/4")
    assert [m["id"] for m in json.loads(history)].count(message["id"]) == 1


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (post_request(4, chat_body(), token=None), 401, "service token"),
        (post_request(4, chat_body(), token="wrong"), 401, "service token"),
        (post_request("abc", chat_body()), 400, "invalid room id"),
        (post_request(4, b"{not json"), 400, "not valid JSON"),
        (post_request(4, b'{"memberId":7,"message":"hi"}'), 400, "nickname"),
        (post_request(4, b"x" * (64 * 1024 + 1)), 413, "larger than 65536"),
        # Client-controlled numbers past int()'s 4,300 digits, nesting past recursion.
        (post_request(HUGE, chat_body()), 400, "invalid room id"),
        (
            post_request(
                4, b'{"memberId":%s,"nickname":"n","message":"m","x":NaN}' % HUGE.encode()
            ),
            400,
            "memberId",
        ),
        (post_request(4, b"[" * 3000 + b"]" * 3000), 400, "nested deeper than 512"),
        (
            post_request(4, b"x").replace(
                b"Content-Length: 1", b"Content-Length: " + HUGE.encode()
            ),
            413,
            "larger than 65536",
        ),
        (
            post_request(4, b"x").replace(b"Content-Length: 1", b"Content-Length: 0x1"),
            400,
            "invalid Content-Length",
        ),
        (
            b"POST /v1/api/chat/4/messages HTTP/1.1\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            411,
            "chunked",
        ),
        (
            b"POST /v1/api/chat/4/messages HTTP/1.1\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b"\r\n\r\n",
            411,
            "Content-Length",
        ),
    ],
)
async def test_post_errors(
    backend: Gateway, request_bytes: bytes, status: int, reason: str
) -> None:
    got, _, body = await exchange(backend.port, request_bytes)
    assert got == status, body
    assert reason in json.loads(body)["error"]


async def test_post_is_forbidden_without_service_token(gateway: Gateway) -> None:
    status, body = await post(gateway.port, 4, chat_body())
    assert status == 403
    assert "--service-token" in body["error"]


async def test_one_request_per_post_connection(backend: Gateway) -> None:
    pipelined = post_request(4, chat_body("once")) + b"GET /healthz HTTP/1.1\r\n\r\n"
    status, _, body = await exchange(backend.port, pipelined)
    assert status == 201
    assert body.count(b"HTTP/1.1") == 0
    _, history = await http_get(backend.port, "/v1/api/chat/4")
    assert [m["message"] for m in json.loads(history)] == ["once"]


async def test_last_message_per_room(backend: Gateway, clients: list[StompTestClient]) -> None:
    sender = await connected(backend.port, clients)
    for room, text in [(1, "a"), (2, "b"), (1, "c")]:
        await sender.send_chat(room, chat_body(text, member_id=room * 10))
    while backend.persister.lag:
        await asyncio.sleep(0.01)
    status, body = await http_get(backend.port, "/v1/api/chat/last/message?rooms=1,2,3")
    assert status == 200
    last = json.loads(body)
    assert [(m["chatRoomId"], m["memberId"]) for m in last] == [(1, 10), (2, 20)]
    assert all(set(m) == {"chatRoomId", "memberId", "createAt"} for m in last)
    assert all(CREATE_AT.fullmatch(m["createAt"]) for m in last)
    assert (await http_get(backend.port, "/v1/api/chat/last/message?rooms=1,x"))[0] == 400


async def member_client(port: int, member: int, opened: list[StompTestClient]) -> StompTestClient:
    client = await StompTestClient.open(port)
    opened.append(client)
    await client.connect("1.2", headers=[("x-member-id", str(member))])
    return client


async def last_connect(port: int, member: int) -> dict[str, Any]:
    status, body = await http_get(port, f"/v1/api/chat/last/connect?memberId={member}")
    assert status == 200, body
    result: dict[str, Any] = json.loads(body)
    return result


async def test_last_connect_two_tabs(backend: Gateway, clients: list[StompTestClient]) -> None:
    assert (await http_get(backend.port, "/v1/api/chat/last/connect?memberId=7"))[0] == 404
    tab1 = await member_client(backend.port, 7, clients)
    first = await last_connect(backend.port, 7)
    assert set(first) == {"memberId", "sessionId", "lastConnect"}
    assert first["memberId"] == 7
    assert CREATE_AT.fullmatch(first["lastConnect"])
    tab2 = await member_client(backend.port, 7, clients)
    second = await last_connect(backend.port, 7)
    assert second["sessionId"] != first["sessionId"]
    assert second["lastConnect"] >= first["lastConnect"]
    # The latest event of any tab wins: closing tab 1 records its disconnect.
    await tab1.close()
    while (closed := await last_connect(backend.port, 7))["sessionId"] == second["sessionId"]:
        await asyncio.sleep(0.01)
    assert closed["sessionId"] == first["sessionId"]
    assert closed["lastConnect"] >= second["lastConnect"]
    await tab2.close()


async def presence(port: int, room: int) -> list[int]:
    status, body = await http_get(port, f"/v1/api/chat/{room}/presence")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["chatRoomId"] == room
    members: list[int] = answer["memberIds"]
    return members


async def test_presence_local(backend: Gateway, clients: list[StompTestClient]) -> None:
    alice = await member_client(backend.port, 1, clients)
    bob_tab1 = await member_client(backend.port, 2, clients)
    bob_tab2 = await member_client(backend.port, 2, clients)
    anonymous = await connected(backend.port, clients)
    for client in (alice, bob_tab1, bob_tab2, anonymous):
        await client.subscribe("/sub/chat/4", "s4")
    await bob_tab1.subscribe("/sub/chat/5", "s5")
    assert await presence(backend.port, 4) == [1, 2]
    assert await presence(backend.port, 5) == [2]
    await alice.unsubscribe("s4")
    assert await presence(backend.port, 4) == [2]
    await bob_tab1.close()
    while await presence(backend.port, 5):  # until the server has closed that tab
        await asyncio.sleep(0.01)
    assert await presence(backend.port, 4) == [2]


async def test_invalid_member_header_is_an_error(
    backend: Gateway, clients: list[StompTestClient]
) -> None:
    client = await StompTestClient.open(backend.port)
    clients.append(client)
    await client.send("CONNECT", [("accept-version", "1.2"), ("x-member-id", "bob")])
    error = await client.expect_error_and_close()
    assert error.get("message") == "invalid member"
