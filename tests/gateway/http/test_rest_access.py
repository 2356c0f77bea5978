"""
The chat REST resources with authentication on: the bearer token and room
check of a SUBSCRIBE (401, 403, filtered last messages), the service token's
full access, a member's own last connection, and ``last/message`` without
``rooms`` (the token's rooms claim, else the rooms the member joined).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway import Gateway
from tests.support.http import exchange, post_request
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import StompTestClient, chat_body
from tests.support.tokens import SECRET, hs256

SERVICE = "s3rvice-token"
ROOM_RESOURCES = ("/v1/api/chat/{}", "/v1/api/chat/{}/presence")


async def get(port: int, path: str, *headers: tuple[str, str]) -> tuple[int, dict[str, str], Any]:
    """GET ``path`` with ``headers``; the status, headers and JSON body."""
    fields = "".join(f"{name}: {value}\r\n" for name, value in headers)
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\n{fields}Connection: close\r\n\r\n"
    status, answer, body = await exchange(port, request.encode())
    return status, answer, json.loads(body)


def bearer(token: str) -> tuple[str, str]:
    return ("Authorization", f"Bearer {token}")


@pytest.fixture
async def secured(make_gateway: GatewayFactory) -> Gateway:
    """Authentication with room authorization by the token's rooms claim."""
    return await make_gateway(jwt_secret=SECRET, room_authorization="claim", service_token=SERVICE)


async def member_in_rooms(
    port: int, clients: list[StompTestClient], token: str, *rooms: int
) -> StompTestClient:
    """A member's session subscribed to ``rooms``, with a message sent to each."""
    client = await StompTestClient.open(port)
    clients.append(client)
    await client.connect("1.2", headers=[("Authorization", f"Bearer {token}")])
    for room in rooms:
        await client.subscribe(f"/sub/chat/{room}", f"s{room}")
        await client.send_chat(
            room, json.dumps({"nickname": "n", "message": f"in {room}"}).encode()
        )
    return client


async def persisted(gateway: Gateway) -> None:
    while gateway.persister.lag:
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/api/chat/4",
        "/v1/api/chat/4/messages?after=" + "0" * 24,
        "/v1/api/chat/4/presence",
        "/v1/api/chat/last/message?rooms=4",
        "/v1/api/chat/last/message",
        "/v1/api/chat/last/connect?memberId=7",
    ],
)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer " + hs256(lifetime=-60)],
)
async def test_chat_resources_need_a_valid_token(
    secured: Gateway, path: str, authorization: str | None
) -> None:
    headers = [] if authorization is None else [("Authorization", authorization)]
    status, answer, body = await get(secured.port, path, *headers)
    assert status == 401
    assert answer["www-authenticate"] == 'Bearer realm="stomp-gateway"'
    assert body["status"] == 401
    assert body["error"].startswith(("no token", "invalid token"))


async def test_a_member_reads_only_the_rooms_it_may_use(
    secured: Gateway, clients: list[StompTestClient]
) -> None:
    token = hs256(7, rooms=[4])
    await member_in_rooms(secured.port, clients, token, 4)
    await persisted(secured)
    for resource in ROOM_RESOURCES:
        status, _, body = await get(secured.port, resource.format(5), bearer(token))
        assert (status, body["error"]) == (403, "not a member of room 5")
        status, _, _ = await get(secured.port, resource.format(4), bearer(token))
        assert status == 200
    status, _, history = await get(secured.port, "/v1/api/chat/4", bearer(token))
    assert [message["message"] for message in history] == ["in 4"]
    after = "/v1/api/chat/{}/messages?after=" + history[0]["id"]
    assert (await get(secured.port, after.format(4), bearer(token)))[:3:2] == (200, [])
    status, _, body = await get(secured.port, after.format(5), bearer(token))
    assert (status, body["error"]) == (403, "not a member of room 5")
    # last/message leaves out the rooms the member may not use.
    status, _, last = await get(secured.port, "/v1/api/chat/last/message?rooms=5,4", bearer(token))
    assert status == 200
    assert [message["chatRoomId"] for message in last] == [4]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_the_service_token_reads_every_room(
    secured: Gateway, clients: list[StompTestClient], scheme: str
) -> None:
    await member_in_rooms(secured.port, clients, hs256(7, rooms=[4]), 4)
    await persisted(secured)
    service = ("Authorization", f"{scheme} {SERVICE}")
    for resource in ROOM_RESOURCES:
        assert (await get(secured.port, resource.format(4), service))[0] == 200
        assert (await get(secured.port, resource.format(5), service))[0] == 200
    status, _, last = await get(secured.port, "/v1/api/chat/last/message?rooms=4,5", service)
    assert (status, [m["chatRoomId"] for m in last]) == (200, [4])
    status, _, event = await get(secured.port, "/v1/api/chat/last/connect?memberId=7", service)
    assert (status, event["memberId"]) == (200, 7)


async def test_a_member_reads_its_own_last_connection_only(
    secured: Gateway, clients: list[StompTestClient]
) -> None:
    token = hs256(7, rooms=[4])
    await member_in_rooms(secured.port, clients, token, 4)
    await member_in_rooms(secured.port, clients, hs256(8, rooms=[4]), 4)
    for path in ("/v1/api/chat/last/connect", "/v1/api/chat/last/connect?memberId=7"):
        status, _, event = await get(secured.port, path, bearer(token))
        assert (status, event["memberId"]) == (200, 7)
    status, _, body = await get(secured.port, "/v1/api/chat/last/connect?memberId=8", bearer(token))
    assert (status, body["error"]) == (403, "member 7 may read its own data only, not member 8's")


async def test_without_room_authorization_every_member_reads_every_room(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(jwt_secret=SECRET)
    assert (await get(gateway.port, "/v1/api/chat/4"))[0] == 401
    assert (await get(gateway.port, "/v1/api/chat/4", bearer(hs256(7, rooms=[5]))))[0] == 200


async def test_other_resources_stay_open(secured: Gateway) -> None:
    for path in ("/healthz", "/readyz", "/", "/ws/info"):
        status, _, _ = await exchange(
            secured.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        assert status == 200, path


async def test_a_repeated_authorization_is_a_bad_request(secured: Gateway) -> None:
    token = hs256(7, rooms=[4])
    status, _, body = await get(secured.port, "/v1/api/chat/4", bearer(token), bearer(token))
    assert (status, body["error"]) == (400, "Authorization sent more than once")
    twice = post_request(
        4, chat_body("hi"), token=SERVICE, extra=f"Authorization: Bearer {SERVICE}\r\n"
    )
    status, _, raw = await exchange(secured.port, twice)
    assert (status, json.loads(raw)["error"]) == (400, "Authorization sent more than once")


# last/message without rooms: the caller's rooms.


async def test_last_message_of_the_rooms_claim(
    secured: Gateway, clients: list[StompTestClient]
) -> None:
    await member_in_rooms(secured.port, clients, hs256(8, rooms=[4, 5, 6]), 4, 5, 6)
    await persisted(secured)
    status, _, last = await get(
        secured.port, "/v1/api/chat/last/message", bearer(hs256(7, rooms=[6, 4]))
    )
    assert status == 200
    assert [message["chatRoomId"] for message in last] == [4, 6]


async def test_last_message_of_the_rooms_joined(
    make_gateway: GatewayFactory, clients: list[StompTestClient]
) -> None:
    gateway = await make_gateway(jwt_secret=SECRET, service_token=SERVICE)
    token = hs256(7)  # no rooms claim: the rooms member 7 subscribed to
    member = await member_in_rooms(gateway.port, clients, token, 4, 6)
    await member_in_rooms(gateway.port, clients, hs256(8), 5)
    await persisted(gateway)
    await member.close()  # remembered after the session ends
    status, _, last = await get(gateway.port, "/v1/api/chat/last/message", bearer(token))
    assert (status, [message["chatRoomId"] for message in last]) == (200, [4, 6])
    # rooms= answers as before; a service names the member.
    status, _, last = await get(gateway.port, "/v1/api/chat/last/message?rooms=5", bearer(token))
    assert (status, [message["chatRoomId"] for message in last]) == (200, [5])
    service = ("Authorization", f"Bearer {SERVICE}")
    status, _, last = await get(gateway.port, "/v1/api/chat/last/message?memberId=8", service)
    assert (status, [message["chatRoomId"] for message in last]) == (200, [5])
    status, _, last = await get(gateway.port, "/v1/api/chat/last/message", bearer(hs256(9)))
    assert (status, last) == (200, [])


async def test_last_message_without_authentication(
    make_gateway: GatewayFactory, clients: list[StompTestClient]
) -> None:
    gateway = await make_gateway(member_header="x-member-id")
    client = await StompTestClient.open(gateway.port)
    clients.append(client)
    await client.connect("1.2", headers=[("x-member-id", "7")])
    await client.subscribe("/sub/chat/4", "s4")
    await client.send_chat(4, chat_body("hello"))
    await persisted(gateway)
    status, _, last = await get(gateway.port, "/v1/api/chat/last/message?memberId=7")
    assert (status, [message["chatRoomId"] for message in last]) == (200, [4])
    status, _, body = await get(gateway.port, "/v1/api/chat/last/message")
    assert status == 400
    assert body["error"] == "rooms (or memberId) is required: the request carries no member's token"


@pytest.mark.mongo
@pytest.mark.timeout(120)
async def test_another_instance_knows_the_rooms_joined_from_mongodb(
    make_gateway: GatewayFactory, mongo_db_uri: str, clients: list[StompTestClient]
) -> None:
    first = await make_gateway(jwt_secret=SECRET, mongo_uri=mongo_db_uri)
    second = await make_gateway(jwt_secret=SECRET, mongo_uri=mongo_db_uri)
    token = hs256(7)
    await member_in_rooms(first.port, clients, token, 6, 4)
    await persisted(first)

    async def rooms_answered() -> list[int]:
        status, _, last = await get(second.port, "/v1/api/chat/last/message", bearer(token))
        assert status == 200, last
        return [message["chatRoomId"] for message in last]

    # The connection log is written behind: wait for it, never for more rooms.
    while (rooms := await rooms_answered()) != [4, 6]:
        assert set(rooms) <= {4, 6}
        await asyncio.sleep(0.05)
