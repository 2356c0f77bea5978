"""Unit tests for :mod:`gateway.chat.routing`."""

from __future__ import annotations

import pytest

from gateway.chat.ids import MAX_ROOM_ID
from gateway.chat.routing import ERRORS_DESTINATION, Router, RoutingError, SendTarget


@pytest.fixture
def router() -> Router:
    return Router("/pub", ("/sub",), allow_broker_send=False)


def test_destinations(router: Router) -> None:
    assert router.room_destination(4) == "/sub/chat/4"
    assert router.pong_destination == "/sub/pong"
    assert ERRORS_DESTINATION == "/user/queue/errors"


@pytest.mark.parametrize(
    ("destination", "route"),
    [
        ("/pub/ping", SendTarget("ping")),
        ("/pub/chat/1", SendTarget("chat", 1)),
        ("/pub/chat/4", SendTarget("chat", 4)),
        (f"/pub/chat/{MAX_ROOM_ID}", SendTarget("chat", MAX_ROOM_ID)),
    ],
)
def test_route_send(router: Router, destination: str, route: SendTarget) -> None:
    assert router.route_send(destination) == route


@pytest.mark.parametrize(
    ("destination", "reason"),
    [
        ("/pub/pong", "unknown destination"),
        ("/pub/ping/", "unknown destination"),
        ("/pub/", "unknown destination"),
        ("/pub", "unknown destination"),
        ("/pubx/ping", "unknown destination"),
        ("/pub/chat", "unknown destination"),
        ("", "unknown destination"),
        ("ping", "unknown destination"),
        ("/other/chat/1", "unknown destination"),
        ("/user/queue/errors", "unknown destination"),
        ("/sub/chat/1", "not allowed"),
        ("/sub/pong", "not allowed"),
        ("/pub/chat/", "invalid room id"),
        ("/pub/chat/abc", "invalid room id"),
        ("/pub/chat/-1", "invalid room id"),
        ("/pub/chat/+1", "invalid room id"),
        ("/pub/chat/0", "invalid room id"),
        ("/pub/chat/007", "invalid room id"),
        ("/pub/chat/1.0", "invalid room id"),
        ("/pub/chat/1/2", "invalid room id"),
        ("/pub/chat/ 1", "invalid room id"),
        ("/pub/chat/١", "invalid room id"),
        (f"/pub/chat/{MAX_ROOM_ID + 1}", "too large"),
        (f"/pub/chat/{2**70}", "too large"),
    ],
)
def test_route_send_refused(router: Router, destination: str, reason: str) -> None:
    with pytest.raises(RoutingError, match=reason):
        router.route_send(destination)


def test_broker_send_allowed() -> None:
    router = Router("/pub", ("/sub", "/topic"), allow_broker_send=True)
    assert router.route_send("/sub/chat/1") == SendTarget("broker")
    assert router.route_send("/topic/news") == SendTarget("broker")
    with pytest.raises(RoutingError, match="unknown destination"):
        router.route_send("/subx/y")
    with pytest.raises(RoutingError, match="unknown destination"):
        router.route_send("/sub")


@pytest.mark.parametrize(
    "destination",
    [
        "/sub/chat/1",
        f"/sub/chat/{MAX_ROOM_ID}",
        "/sub/pong",
        "/sub/anything/else",
        "/sub/chat",
        "/user/queue/errors",
        "/user/anything",
    ],
)
def test_check_subscribe_accepts(router: Router, destination: str) -> None:
    router.check_subscribe(destination)


@pytest.mark.parametrize(
    "destination",
    [
        "/sub/chat/abc",
        "/sub/chat/0",
        "/sub/chat/",
        "/sub/chat/1/x",
        f"/sub/chat/{MAX_ROOM_ID + 1}",
        "/sub",
        "/subx/1",
        "/pub/chat/1",
        "/user",
        "",
        "sub/chat/1",
    ],
)
def test_check_subscribe_refuses(router: Router, destination: str) -> None:
    with pytest.raises(RoutingError):
        router.check_subscribe(destination)


def test_custom_prefixes() -> None:
    router = Router("/app", ("/topic", "/queue"), allow_broker_send=False)
    assert router.route_send("/app/chat/9") == SendTarget("chat", 9)
    assert router.route_send("/app/ping") == SendTarget("ping")
    assert router.room_destination(9) == "/topic/chat/9"
    assert router.pong_destination == "/topic/pong"
    router.check_subscribe("/queue/chat/abc")  # rooms live under the first prefix only
    router.check_subscribe("/topic/chat/9")
    with pytest.raises(RoutingError):
        router.check_subscribe("/topic/chat/abc")
    with pytest.raises(RoutingError):
        router.route_send("/pub/chat/9")
    with pytest.raises(RoutingError, match="not allowed"):
        router.route_send("/queue/x")
