"""SockJS routes under the STOMP endpoints, /info, preflights and the WebSocket transport."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect

from gateway import Gateway
from gateway.transport.sockjs import Route, route
from tests.support.servers import GatewayFactory

ENDPOINTS = frozenset({"/wss", "/ws"})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/wss", Route.RAW),
        ("/wss/websocket", Route.RAW),
        ("/wss/info", Route.INFO),
        ("/wss/123/abcdefgh/websocket", Route.SOCKJS),
        ("/ws/0/s/websocket", Route.SOCKJS),
        ("/wss/123/abcdefgh/xhr_streaming", Route.FALLBACK),
        ("/wss/123/abcdefgh/eventsource", Route.FALLBACK),
        ("/wss/1.2/abc/websocket", None),
        ("/wss/123/websocket", None),
        ("/other/info", None),
        ("/wssx/info", None),
    ],
)
def test_routes(path: str, expected: Route | None) -> None:
    assert route(path, ENDPOINTS) is expected


def _request(
    port: int, path: str, method: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


async def request(
    gateway: Gateway, path: str, method: str = "GET", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(_request, gateway.port, path, method, headers)


@pytest.fixture
async def sockjs_gateway(make_gateway: GatewayFactory) -> Gateway:
    return await make_gateway(endpoint=("/wss",))


async def test_info_allows_the_origin_with_credentials(sockjs_gateway: Gateway) -> None:
    status, headers, body = await request(sockjs_gateway, "/wss/info?t=1", Origin="http://app")
    assert status == 200
    info = json.loads(body)
    assert info["websocket"] is True
    assert info["cookie_needed"] is False
    assert info["origins"] == ["*:*"]
    assert isinstance(info["entropy"], int)
    assert headers["Access-Control-Allow-Origin"] == "http://app"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert "no-store" in headers["Cache-Control"]


async def test_info_without_origin_allows_any(sockjs_gateway: Gateway) -> None:
    _, headers, _ = await request(sockjs_gateway, "/wss/info")
    assert headers["Access-Control-Allow-Origin"] == "*"


async def test_options_is_answered(sockjs_gateway: Gateway) -> None:
    status, headers, body = await request(
        sockjs_gateway,
        "/wss/info",
        "OPTIONS",
        Origin="http://app",
        **{"Access-Control-Request-Headers": "x-custom"},
    )
    assert (status, body) == (204, b"")
    assert headers["Access-Control-Allow-Methods"] == "OPTIONS, GET"
    assert headers["Access-Control-Allow-Headers"] == "x-custom"
    assert headers["Access-Control-Allow-Origin"] == "http://app"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD"])
async def test_other_methods_get_405(sockjs_gateway: Gateway, method: str) -> None:
    status, _, body = await request(sockjs_gateway, "/healthz", method)
    assert status == 405
    if method != "HEAD":
        assert json.loads(body)["error"] == f"{method} is not served here; use GET"


async def test_fallback_transports_get_a_clear_404(sockjs_gateway: Gateway) -> None:
    status, _, body = await request(sockjs_gateway, "/wss/000/abc/xhr")
    assert status == 404
    assert "use the websocket transport" in json.loads(body)["error"]


async def test_websocket_transport_frames_stomp(sockjs_gateway: Gateway) -> None:
    url = f"ws://127.0.0.1:{sockjs_gateway.port}/wss/042/session1/websocket"
    async with connect(url) as websocket:
        assert await websocket.recv() == "o"
        connect_frame = "CONNECT\naccept-version:1.1,1.0\nheart-beat:0,0\n\n\0"
        await websocket.send(json.dumps([connect_frame]))
        [connected] = json.loads((await websocket.recv())[1:])
        assert connected.startswith("CONNECTED\nversion:1.1\n")
        subscribe = "SUBSCRIBE\nid:sub-0\ndestination:/sub/chat/4\n\n\0"
        body = '{"memberId":7,"nickname":"n","message":"안녕"}'
        send = f"SEND\ndestination:/pub/chat/4\nreceipt:r\n\n{body}\0"
        await websocket.send(json.dumps([subscribe, send]))
        # The MESSAGE and the RECEIPT were ready together: one array.
        message, receipt = json.loads((await websocket.recv())[1:])
        assert message.startswith("MESSAGE\nsubscription:sub-0\n")
        assert json.loads(message.split("\n\n", 1)[1].rstrip("\0"))["message"] == "안녕"
        assert receipt == "RECEIPT\nreceipt-id:r\n\n\0"


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[" + "9" * 5000 + "]",  # past int()'s 4,300 digits
        '["x",' + "9" * 5000 + ",NaN]",  # the same, read by the standard library's parser
        "[" * 3000 + "]" * 3000,  # past the parsers' recursion
        '["\\ud800"]',  # a lone surrogate, which no STOMP frame can carry
    ],
    ids=["not-json", "5000-digits", "5000-digits-beside-nan", "3000-deep", "lone-surrogate"],
)
async def test_invalid_json_closes_the_session_with_a_reason(
    sockjs_gateway: Gateway, message: str
) -> None:
    url = f"ws://127.0.0.1:{sockjs_gateway.port}/wss/042/session2/websocket"
    async with connect(url) as websocket:
        assert await websocket.recv() == "o"
        await websocket.send(message)
        closing = await websocket.recv()
        assert isinstance(closing, str)
        code, reason = json.loads(closing[1:])
        assert code == 1002
        assert "invalid SockJS message" in reason
        await websocket.wait_closed()
        assert websocket.close_code == 1002


async def test_sockjs_heartbeat_when_stomp_negotiated_none(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(endpoint=("/wss",), sockjs_heartbeat=200)
    url = f"ws://127.0.0.1:{gateway.port}/wss/042/session3/websocket"
    async with connect(url) as websocket:
        assert await websocket.recv() == "o"
        await websocket.send(json.dumps(["CONNECT\naccept-version:1.2\nheart-beat:0,0\n\n\0"]))
        assert (await websocket.recv()).startswith("a[")
        assert await asyncio.wait_for(websocket.recv(), 2) == "h"
        assert await asyncio.wait_for(websocket.recv(), 2) == "h"


async def test_stomp_heart_beats_travel_inside_sockjs_arrays(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(endpoint=("/wss",), heartbeat_floor=200)
    url = f"ws://127.0.0.1:{gateway.port}/wss/042/session4/websocket"
    async with connect(url) as websocket:
        assert await websocket.recv() == "o"
        await websocket.send(json.dumps(["CONNECT\naccept-version:1.2\nheart-beat:0,200\n\n\0"]))
        assert (await websocket.recv()).startswith("a[")
        assert await asyncio.wait_for(websocket.recv(), 2) == 'a["\\n"]'


async def test_raw_websocket_under_the_endpoint(sockjs_gateway: Gateway) -> None:
    for path in ("/wss", "/wss/websocket"):
        async with connect(f"ws://127.0.0.1:{sockjs_gateway.port}{path}") as websocket:
            await websocket.send("CONNECT\naccept-version:1.2\n\n\0")
            reply = await websocket.recv()
            assert isinstance(reply, str)
            assert reply.startswith("CONNECTED\n")
