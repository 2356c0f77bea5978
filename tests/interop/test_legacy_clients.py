"""
End-to-end tests with the seed front end's own client stack: ``stompjs`` 2.3.3
(the legacy ``Stomp`` of stomp-websocket) over ``sockjs-client`` 1.6.1, and the
same ``Stomp`` over a raw ``ws`` WebSocket.

The seed's page does ``Stomp.over(new SockJS('/wss'))`` and
``client.connect({Authorization: 'Bearer ...'}, onConnect, onError)``:
stompjs 2.3.3 offers ``accept-version:1.1,1.0`` and ``heart-beat:10000,10000``,
so these sessions run STOMP 1.1 (no subprotocol over SockJS, ``v11.stomp`` over
a raw socket offering ``v10.stomp, v11.stomp``). stompjs 2.3.3 also cuts any
frame longer than 16 KiB characters into several WebSocket messages.

Each test drives one ``node tests/js/legacy_client.cjs`` process (see its
header) through the ``NodeClient`` helper of ``tests/support/node.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from gateway import Gateway
from tests.support import node as nodejs
from tests.support.node import Event, NodeClient, Spawn, chat_message, wait_registry
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import SERVER

HELLO = "안녕하세요 👋🏽"
SEED_HEADERS = {"Authorization": "Bearer x"}

spawn = nodejs.spawn_fixture("legacy_client.cjs", "stompjs", "sockjs-client", "ws")


# How the legacy client reaches the gateway: (endpoint, transport, path, subprotocol).
TRANSPORTS = {
    # The seed's front end: SockJS at http://host/wss, its WebSocket transport.
    "sockjs": (("/wss",), "sockjs", "/wss", ""),
    # Stomp.over(new WebSocket(url, ['v10.stomp', 'v11.stomp'])) on the default endpoint...
    "ws": (("/ws",), "ws", "/ws", "v11.stomp"),
    # ...and on the raw path next to the SockJS endpoint.
    "wss-websocket": (("/wss",), "ws", "/wss/websocket", "v11.stomp"),
}


class Legacy:
    """Start a gateway for one transport and connect legacy clients to it."""

    def __init__(self, gateway: Gateway, node: NodeClient, transport: str) -> None:
        self.gateway = gateway
        self.node = node
        _, self.transport, self.path, self.subprotocol = TRANSPORTS[transport]

    @property
    def url(self) -> str:
        scheme = "http" if self.transport == "sockjs" else "ws"
        return f"{scheme}://127.0.0.1:{self.gateway.port}{self.path}"

    async def connect(
        self, client: str, heart_beat: tuple[str, str] = ("10000,10000", "10000,10000")
    ) -> Event:
        """
        Connect as the seed does; check the CONNECTED frame and the transport.

        ``heart_beat``: the client's offer (stompjs 2.3.3's default) and the
        server's answer.
        """
        outgoing, incoming = (int(ms) for ms in heart_beat[0].split(","))
        done = await self.node.do(
            "connect",
            client=client,
            url=self.url,
            transport=self.transport,
            connectHeaders=SEED_HEADERS,
            trace=True,
            heartbeat={"outgoing": outgoing, "incoming": incoming},
        )
        # sockjs-client used its WebSocket transport, not an HTTP fallback.
        assert done["transport"] == ("websocket" if self.transport == "sockjs" else "raw")
        assert done["protocol"] == self.subprotocol
        headers = done["headers"]
        # stompjs 2.3.3 offered accept-version:1.1,1.0.
        nodejs.check_connected(headers, "1.1", heart_beat[1])
        # What the seed's client sends: its headers, then stompjs's own, no host.
        [connect] = self.node.of("sent", client)
        assert connect["data"] == (
            "CONNECT\nAuthorization:Bearer x\naccept-version:1.1,1.0\n"
            f"heart-beat:{heart_beat[0]}\n\n\0"
        )
        first = next(e for e in self.node.of("wire", client) if e["data"] != "\n")
        assert first["data"] == (
            f"CONNECTED\nversion:1.1\nheart-beat:{heart_beat[1]}\nserver:{SERVER}\n"
            f"session:{headers['session']}\n\n\0"
        )
        return done

    async def subscribe(self, client: str, destination: str) -> str:
        """Subscribe with a receipt, so the subscription is live; return its id."""
        receipt = f"sub-{client}-{len(self.node.events)}"
        done = await self.node.do(
            "subscribe", client=client, destination=destination, receipt=receipt
        )
        assert done["receipt"]["headers"] == {"receipt-id": receipt}
        assert done["receipt"]["body"] == ""
        subscription: str = done["id"]
        return subscription

    async def send(self, client: str, destination: str, body: str, *, receipt: bool) -> str | None:
        """
        SEND as the seed does (no receipt), or with a receipt: then its effect,
        fan-out included, is done when this returns. Return the receipt id.
        """
        if not receipt:
            await self.node.do("send", client=client, destination=destination, body=body)
            return None
        receipt_id = f"send-{client}-{len(self.node.events)}"
        done = await self.node.do(
            "send", client=client, destination=destination, body=body, receipt=receipt_id
        )
        assert done["receipt"]["headers"] == {"receipt-id": receipt_id}
        return receipt_id

    def assert_healthy(self) -> None:
        self.node.assert_healthy()
        assert self.node.of("lost") == []
        assert self.node.of("close") == []


def check_pong(event: Event, subscription: str) -> None:
    assert event["command"] == "MESSAGE"
    nodejs.pong_message(event, subscription)


def payload(event: Event) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(event["body"])
    return result


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_seed_front_end_chat(
    make_gateway: GatewayFactory, spawn: Spawn, transport: str
) -> None:
    endpoint = TRANSPORTS[transport][0]
    gateway = await make_gateway(endpoint=endpoint)
    node = await spawn()
    legacy = Legacy(gateway, node, transport)
    await legacy.connect("seed")
    await legacy.connect("other")
    room_4 = await legacy.subscribe("seed", "/sub/chat/4")
    room_5 = await legacy.subscribe("seed", "/sub/chat/5")
    pong = await legacy.subscribe("seed", "/sub/pong")
    other_4 = await legacy.subscribe("other", "/sub/chat/4")
    other_pong = await legacy.subscribe("other", "/sub/pong")
    assert len({room_4, room_5, pong}) == 3
    assert len(gateway.registry) == 5

    chat = {"memberId": 7, "nickname": "henhen", "message": HELLO}
    file = {"memberId": 7, "nickname": "henhen", "fileId": 12, "fileName": "a.png"}
    reply = {"memberId": 8, "nickname": "mimi", "message": 'a "quoted" line\nand: a colon'}
    in_5 = {"memberId": 7, "nickname": "henhen", "message": "room five"}
    # The seed's sends: client.send(destination, {}, JSON.stringify(...)).
    await legacy.send("seed", "/pub/chat/4", json.dumps(chat, ensure_ascii=False), receipt=False)
    await legacy.send("seed", "/pub/chat/4", json.dumps(file), receipt=False)
    await node.wait_messages("other", "/sub/chat/4", 2)
    await legacy.send("other", "/pub/chat/4", json.dumps(reply), receipt=True)
    await legacy.send("seed", "/pub/chat/5", json.dumps(in_5), receipt=False)
    await legacy.send("seed", "/pub/ping", json.dumps({"message": "ping"}), receipt=False)
    seed_send = next(e for e in node.of("sent", "seed") if e["data"].startswith("SEND\n"))
    body = json.dumps(chat, ensure_ascii=False)
    assert seed_send["data"] == (
        f"SEND\ndestination:/pub/chat/4\ncontent-length:{len(body.encode())}\n\n{body}\0"
    )

    expected = [chat, file, reply]
    for client, subscription in (("seed", room_4), ("other", other_4)):
        messages = await node.wait_messages(client, "/sub/chat/4", 3)
        assert len(messages) == 3
        for message, sent in zip(messages, expected, strict=True):
            chat_message(message, subscription, 4, sent)
    assert [payload(m)["id"] for m in node.messages("seed", "/sub/chat/4")] == [
        payload(m)["id"] for m in node.messages("other", "/sub/chat/4")
    ]
    [five] = await node.wait_messages("seed", "/sub/chat/5", 1)
    chat_message(five, room_5, 5, in_5)
    assert node.messages("other", "/sub/chat/5") == []

    [pong_message] = await node.wait_messages("seed", "/sub/pong", 1)
    check_pong(pong_message, pong)
    # Anything queued for "other" by the ping would have arrived before this.
    barrier = {"memberId": 0, "nickname": "barrier", "message": "barrier"}
    await legacy.send("seed", "/pub/chat/4", json.dumps(barrier), receipt=True)
    await node.wait_messages("other", "/sub/chat/4", 4)
    assert node.messages("other", "/sub/pong") == []

    # The other client's own ping is answered to it alone.
    await legacy.send("other", "/pub/ping", json.dumps({"message": "ping"}), receipt=True)
    [other_pong_message] = await node.wait_messages("other", "/sub/pong", 1)
    check_pong(other_pong_message, other_pong)
    assert len(node.messages("seed", "/sub/pong")) == 1

    legacy.assert_healthy()
    await node.finish()
    # stompjs 2.3.3 sends DISCONNECT and closes at once: every subscription goes.
    await wait_registry(gateway, 0)


@pytest.mark.parametrize("transport", ["sockjs", "ws"])
async def test_unsubscribing_a_replaced_duplicate_keeps_every_room(
    make_gateway: GatewayFactory, spawn: Spawn, transport: str
) -> None:
    gateway = await make_gateway(endpoint=TRANSPORTS[transport][0])
    node = await spawn()
    legacy = Legacy(gateway, node, transport)
    await legacy.connect("seed")
    room_5 = await legacy.subscribe("seed", "/sub/chat/5")
    first = await legacy.subscribe("seed", "/sub/chat/4")
    second = await legacy.subscribe("seed", "/sub/chat/4")  # the seed's re-render
    await node.do("unsubscribe", client="seed", id=first)
    sent = {"memberId": 7, "nickname": "henhen", "message": HELLO}
    # With receipts: each RECEIPT follows the UNSUBSCRIBE's effect, so the session lives.
    await legacy.send("seed", "/pub/chat/4", json.dumps(sent), receipt=True)
    await legacy.send("seed", "/pub/chat/5", json.dumps(sent), receipt=True)
    [four] = await node.wait_messages("seed", "/sub/chat/4", 1)
    chat_message(four, second, 4, sent)
    [five] = await node.wait_messages("seed", "/sub/chat/5", 1)
    chat_message(five, room_5, 5, sent)
    assert len(gateway.registry) == 2
    legacy.assert_healthy()
    await node.finish()


@pytest.mark.parametrize("transport", ["sockjs", "ws"])
async def test_a_nul_in_a_relayed_header_forges_no_error(
    make_gateway: GatewayFactory, spawn: Spawn, transport: str
) -> None:
    gateway = await make_gateway(endpoint=TRANSPORTS[transport][0], allow_broker_send=True)
    node = await spawn()
    legacy = Legacy(gateway, node, transport)
    await legacy.connect("victim")
    await legacy.connect("forger")
    subscription = await legacy.subscribe("victim", "/sub/x")
    # stompjs 2.3.3 escapes nothing: the header goes out as written.
    forged = {"x": "1\0ERROR\nmessage:server shutting down"}
    await node.do("send", client="forger", destination="/sub/x", body="hi", headers=forged)
    refusal = await node.wait_for(lambda e: e["event"] == "stompError", what="ERROR")
    assert (refusal["client"], refusal["headers"]["message"]) == ("forger", "malformed header")
    await node.wait_for(lambda e: e["event"] == "close", what="the forger's close")
    await legacy.send("victim", "/sub/x", "after", receipt=True)
    [message] = await node.wait_messages("victim", "/sub/x", 1)
    assert (message["body"], message["callback"]) == ("after", subscription)
    assert [e["client"] for e in node.of("stompError")] == ["forger"]
    assert [e["client"] for e in node.of("close")] == ["forger"]
    assert len(gateway.registry) == 1
    await node.finish("stompError")


@pytest.mark.parametrize("transport", ["sockjs", "ws"])
async def test_frames_split_into_16_kib_pieces(
    make_gateway: GatewayFactory, spawn: Spawn, transport: str
) -> None:
    endpoint = TRANSPORTS[transport][0]
    gateway = await make_gateway(endpoint=endpoint, max_message_length=40_000)
    node = await spawn()
    legacy = Legacy(gateway, node, transport)
    await legacy.connect("seed")
    room = await legacy.subscribe("seed", "/sub/chat/4")
    # 40000 characters (56000 bytes): stompjs 2.3.3 sends the SEND in three
    # WebSocket messages (three SockJS messages over SockJS), cut every 16384
    # characters wherever that falls.
    text = "".join(f"{i:04d}:한글abc" for i in range(4000))
    assert len(text) == 40_000
    sent = {"memberId": 7, "nickname": "henhen", "message": text}
    body = json.dumps(sent, ensure_ascii=False)
    receipt = await legacy.send("seed", "/pub/chat/4", body, receipt=True)
    pieces = [e["data"] for e in node.of("sent", "seed")][2:]  # after CONNECT, SUBSCRIBE
    frame = "".join(pieces)
    assert frame == (
        f"SEND\nreceipt:{receipt}\ndestination:/pub/chat/4\n"
        f"content-length:{len(body.encode())}\n\n{body}\0"
    )
    assert [len(piece) for piece in pieces] == [16384, 16384, len(frame) - 2 * 16384]
    [message] = await node.wait_messages("seed", "/sub/chat/4", 1)
    assert chat_message(message, room, 4, sent)["message"] == text
    legacy.assert_healthy()
    await node.finish()


async def test_shutdown_reaches_sockjs_client(make_gateway: GatewayFactory, spawn: Spawn) -> None:
    gateway = await make_gateway(endpoint=("/wss",))
    node = await spawn()
    legacy = Legacy(gateway, node, "sockjs")
    await legacy.connect("seed")
    await legacy.subscribe("seed", "/sub/chat/4")
    url = legacy.url

    await gateway.shutdown()
    # The STOMP ERROR, then SockJS's close frame c[1001,"..."], then stompjs's
    # error callback with its "Lost connection" string.
    error = await node.wait_for(lambda e: e["event"] == "stompError", what="ERROR")
    assert error["command"] == "ERROR"
    assert error["headers"]["message"] == "server shutting down"
    close = await node.wait_for(lambda e: e["event"] == "close", what="close")
    assert close["code"] == 1001
    assert close["reason"] == "server shutting down"
    lost = await node.wait_for(lambda e: e["event"] == "lost", what="lost connection")
    assert lost["message"] == f"Whoops! Lost connection to {url}"
    assert len(gateway.registry) == 0
    await node.finish("stompError")


async def test_sockjs_heartbeats_only_without_stomp_heart_beats(
    make_gateway: GatewayFactory, spawn: Spawn
) -> None:
    gateway = await make_gateway(endpoint=("/wss",), sockjs_heartbeat=200)
    node = await spawn()
    legacy = Legacy(gateway, node, "sockjs")
    # STOMP heart-beats off both ways: the server keeps the SockJS session
    # alive with "h" frames every --sockjs-heartbeat ms instead.
    await legacy.connect("quiet", heart_beat=("0,0", "0,10000"))
    # The seed's default, STOMP heart-beats every 10 s: no "h" frames.
    await legacy.connect("seed")
    room = await legacy.subscribe("quiet", "/sub/chat/4")

    def beats(count: int) -> Callable[[Event], bool]:
        return lambda _: len(node.of("sockjsHeartbeat", "quiet")) >= count

    await node.wait_for(beats(3), timeout=5.0, what="three SockJS heart-beats")
    assert node.of("sockjsHeartbeat", "seed") == []
    # "h" frames are SockJS's own: stompjs never saw them.
    assert all(e["data"] != "h" for e in node.of("wire"))
    assert node.of("heartbeat") == []

    sent = {"memberId": 7, "nickname": "henhen", "message": "after the beats"}
    await legacy.send("seed", "/pub/chat/4", json.dumps(sent), receipt=True)
    [message] = await node.wait_messages("quiet", "/sub/chat/4", 1)
    chat_message(message, room, 4, sent)
    legacy.assert_healthy()
    await node.finish()
