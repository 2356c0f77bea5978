"""
CORS on every plain HTTP answer, as a page sending credentials needs it:
the allowed Origin echoed with ``Access-Control-Allow-Credentials: true`` and
``Vary: Origin`` (never the wildcard), preflights allowing ``authorization``
and ``content-type``, and no grant at all for a disallowed origin.
"""

from __future__ import annotations

import pytest

from gateway import Gateway
from tests.support.http import exchange
from tests.support.servers import GatewayFactory
from tests.support.tokens import SECRET, hs256

PAGE = "http://localhost:5173"  # the seed's front end in development
OTHER = "https://evil.example"
GRANT = ("access-control-allow-origin", "access-control-allow-credentials")
# Every kind of answer: resources, a 404 of the backend API, errors, SockJS info.
PATHS = (
    "/v1/api/chat/4",
    "/v1/api/chat/4/messages?after=" + "0" * 24,
    "/v1/api/chat/4/presence",
    "/v1/api/chat/last/connect?memberId=7",
    "/v1/api/chat/last/message?rooms=4",
    "/v1/api/chat/x",
    "/healthz",
    "/nowhere",
    "/wss/info",
)


async def call(
    port: int, method: str, path: str, *headers: tuple[str, str]
) -> tuple[int, dict[str, str]]:
    fields = "".join(f"{name}: {value}\r\n" for name, value in headers)
    request = f"{method} {path} HTTP/1.1\r\nHost: x\r\n{fields}Content-Length: 0\r\n\r\n"
    status, answer, _ = await exchange(port, request.encode())
    return status, answer


def granted(headers: dict[str, str], origin: str) -> bool:
    assert headers["vary"] == "Origin"
    allowed = (headers.get(GRANT[0]), headers.get(GRANT[1])) == (origin, "true")
    assert allowed or not any(name in headers for name in GRANT), headers
    return allowed


@pytest.mark.parametrize("path", PATHS)
async def test_every_origin_is_granted_with_credentials_by_default(
    make_gateway: GatewayFactory, path: str
) -> None:
    gateway = await make_gateway(endpoint=("/wss",))
    for origin in (PAGE, OTHER):
        _, headers = await call(gateway.port, "GET", path, ("Origin", origin))
        assert granted(headers, origin)
    _, headers = await call(gateway.port, "GET", path)  # no browser: no credentials
    assert headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in headers


@pytest.mark.parametrize("path", PATHS)
async def test_only_the_allowed_origins_are_granted(
    make_gateway: GatewayFactory, path: str
) -> None:
    gateway = await make_gateway(endpoint=("/wss",), allowed_origin=(PAGE,))
    _, headers = await call(gateway.port, "GET", path, ("Origin", PAGE))
    assert granted(headers, PAGE)
    _, headers = await call(gateway.port, "GET", path, ("Origin", OTHER))
    assert not granted(headers, OTHER)


async def test_a_refused_token_is_still_readable_by_the_page(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(jwt_secret=SECRET, room_authorization="claim")
    token = ("Authorization", f"Bearer {hs256(7, rooms=[5])}")
    for path, headers, expected in [
        ("/v1/api/chat/4", (), 401),
        ("/v1/api/chat/4", (token,), 403),
        ("/v1/api/chat/5", (token,), 200),
    ]:
        status, answer = await call(gateway.port, "GET", path, ("Origin", PAGE), *headers)
        assert status == expected
        assert granted(answer, PAGE)


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/v1/api/chat/4", "OPTIONS, GET"),
        ("/v1/api/chat/last/message", "OPTIONS, GET"),
        ("/v1/api/chat/4/messages", "OPTIONS, GET, POST"),
    ],
)
async def test_preflights_allow_authorization_and_content_type(
    make_gateway: GatewayFactory, path: str, methods: str
) -> None:
    gateway = await make_gateway(allowed_origin=(PAGE,), service_token="t")
    asked = ("Access-Control-Request-Method", "GET")
    status, headers = await call(gateway.port, "OPTIONS", path, ("Origin", PAGE), asked)
    assert status == 204
    assert granted(headers, PAGE)
    assert headers["access-control-allow-methods"] == methods
    assert headers["access-control-allow-headers"] == "authorization, content-type"
    wanted = ("Access-Control-Request-Headers", "authorization,content-type")
    _, headers = await call(gateway.port, "OPTIONS", path, ("Origin", PAGE), asked, wanted)
    assert headers["access-control-allow-headers"] == "authorization,content-type"
    status, headers = await call(gateway.port, "OPTIONS", path, ("Origin", OTHER), asked, wanted)
    assert status == 204
    assert not granted(headers, OTHER)
    assert not any(name.startswith("access-control-") for name in headers)


async def test_a_repeated_origin_is_a_bad_request(gateway: Gateway) -> None:
    for path in ("/v1/api/chat/4", "/healthz"):
        status, headers = await call(gateway.port, "GET", path, ("Origin", PAGE), ("Origin", OTHER))
        assert status == 400
        assert "access-control-allow-origin" not in headers


async def test_a_preflight_may_ask_for_headers_on_several_lines(gateway: Gateway) -> None:
    asked = [("Access-Control-Request-Headers", name) for name in ("authorization", "x-a")]
    status, headers = await call(
        gateway.port, "OPTIONS", "/v1/api/chat/4", ("Origin", PAGE), *asked
    )
    assert status == 204
    assert headers["access-control-allow-headers"] == "authorization, x-a"
