"""
``@stomp/stompjs`` 7 under settings the other Node tests do not use.

``test_node_clients.py`` turns heart-beats off and reconnection off; here the
``Client`` runs with its defaults (heart-beats 10 s both ways, ``content-length``
on every SEND with a body, reconnection after 5 s), with ``forceBinaryWSFrames``
(every frame a binary WebSocket message), with ``splitLargeFrames`` (a frame cut
into 8 KiB WebSocket messages, as for Spring) and with a 200 ms
``reconnectDelay`` across a gateway restart, re-subscribing in ``onConnect``.

Each test drives one ``node tests/js/variants_client.mjs`` process (see its
header for the actions and the events it reports) through the ``NodeClient``
helper of ``tests/support/node.py``.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from gateway import Gateway
from tests.support import node as nodejs
from tests.support.node import Event, NodeClient, Spawn, chat_message, wait_registry
from tests.support.servers import GatewayFactory

HELLO = "안녕하세요 👋🏽"

spawn = nodejs.spawn_fixture("variants_client.mjs", "@stomp/stompjs", "ws")


async def connect(
    node: NodeClient,
    port: int,
    client: str,
    *,
    heart_beat: str = "10000,10000",
    **fields: Any,
) -> None:
    """Connect a client and check the CONNECTED frame (STOMP 1.2, ``v12.stomp``)."""
    done = await node.do(
        "connect", client=client, url=nodejs.ws_url(port), traceSend=True, **fields
    )
    assert done["subprotocol"] == "v12.stomp"
    nodejs.check_connected(done["headers"], "1.2", heart_beat)


def sent_frames(node: NodeClient, client: str, command: str) -> list[Event]:
    """The WebSocket messages ``client`` sent that start a ``command`` frame."""
    return [e for e in node.of("sent", client) if e["head"].split("\n", 1)[0] == command]


def header_lines(event: Event) -> list[str]:
    lines: list[str] = event["head"].split("\n")[1:]
    return lines


async def test_default_settings_publish_and_receive(gateway: Gateway, spawn: Spawn) -> None:
    node = await spawn()
    # No options: stompjs offers heart-beat 10000,10000; the server sends
    # as often as asked and asks for the same (--heartbeat-interval 10000).
    await connect(node, gateway.port, "a")
    await connect(node, gateway.port, "b")
    [connect_a] = sent_frames(node, "a", "CONNECT")
    assert sorted(header_lines(connect_a)) == [
        "accept-version:1.2,1.1,1.0",
        "heart-beat:10000,10000",
    ]
    room_a = await node.subscribe("a", "/sub/chat/4")
    pong_a = await node.subscribe("a", "/sub/pong")
    room_b = await node.subscribe("b", "/sub/chat/4")
    other_room_b = await node.subscribe("b", "/sub/chat/5")
    assert len(gateway.registry) == 4

    chat = {"memberId": 7, "nickname": "henhen", "message": HELLO}
    file = {"memberId": 8, "nickname": "mimi", "fileId": 12, "fileName": "a.png"}
    other = {"memberId": 8, "nickname": "mimi", "message": "room 5"}
    await node.do("publish", client="a", destination="/pub/chat/4", body=json.dumps(chat))
    await node.do("publish", client="b", destination="/pub/chat/4", body=json.dumps(file))
    await node.do("publish", client="b", destination="/pub/chat/5", body=json.dumps(other))
    await node.do("publish", client="a", destination="/pub/ping", body="", receipt="ping")

    # Every SEND with a body carried its UTF-8 length.
    sends = sent_frames(node, "a", "SEND") + sent_frames(node, "b", "SEND")
    assert len(sends) == 4
    for send, body in zip(sends, [chat, {}, file, other], strict=True):
        if body:
            length = len(json.dumps(body).encode())
            assert f"content-length:{length}" in header_lines(send), send
    assert all(not event["binary"] for event in node.of("sent"))

    for client, subscription, room, expected in (
        ("a", room_a, 4, [chat, file]),
        ("b", room_b, 4, [chat, file]),
        ("b", other_room_b, 5, [other]),
    ):
        messages = await node.wait_messages(client, f"/sub/chat/{room}", len(expected))
        assert len(messages) == len(expected)
        payloads = [
            chat_message(message, subscription, room, body)
            for message, body in zip(messages, expected, strict=True)
        ]
        assert payloads[0]["message"] == expected[0].get("message")
    # Both clients got the same two messages (same ids, same order).
    ids_a = [json.loads(m["body"])["id"] for m in node.messages("a", "/sub/chat/4")]
    ids_b = [json.loads(m["body"])["id"] for m in node.messages("b", "/sub/chat/4")]
    assert ids_a == ids_b
    assert len(set(ids_a)) == 2

    [pong] = node.messages("a", "/sub/pong")
    nodejs.pong_message(pong, pong_a)
    assert node.messages("b", "/sub/pong") == []
    assert node.of("close") == []
    await node.finish()
    await wait_registry(gateway, 0)


async def test_force_binary_ws_frames(gateway: Gateway, spawn: Spawn) -> None:
    node = await spawn()
    options = {"forceBinaryWSFrames": True, "heartbeatIncoming": 0, "heartbeatOutgoing": 0}
    await connect(node, gateway.port, "bin", heart_beat="0,10000", options=options)
    room = await node.subscribe("bin", "/sub/chat/4")
    pong = await node.subscribe("bin", "/sub/pong")
    chat = {"memberId": 7, "nickname": "henhen", "message": f"binary {HELLO}"}
    file = {"memberId": 7, "nickname": "henhen", "fileId": 12, "fileName": "사진.png"}
    for body in (chat, file):
        await node.do(
            "publish", client="bin", destination="/pub/chat/4", body=json.dumps(body), receipt="s"
        )
    await node.do("publish", client="bin", destination="/pub/ping", body="", receipt="ping")

    # Every frame went out as a binary WebSocket message.
    sent = node.of("sent", "bin")
    commands = [event["head"].split("\n", 1)[0] for event in sent]
    assert commands == ["CONNECT", "SUBSCRIBE", "SUBSCRIBE", "SEND", "SEND", "SEND"]
    assert all(event["binary"] for event in sent)

    messages = node.messages("bin", "/sub/chat/4")
    assert len(messages) == 2
    for message, body in zip(messages, [chat, file], strict=True):
        chat_message(message, room, 4, body)
    [pong_message] = node.messages("bin", "/sub/pong")
    assert pong_message["body"] == "pong"
    assert pong_message["headers"]["subscription"] == pong
    await node.finish()


async def test_split_large_frames(make_gateway: GatewayFactory, spawn: Spawn) -> None:
    gateway = await make_gateway(max_message_length=64 * 1024)
    node = await spawn()
    chunk = 8 * 1024
    options = {
        "splitLargeFrames": True,
        "maxWebSocketChunkSize": chunk,
        "heartbeatIncoming": 0,
        "heartbeatOutgoing": 0,
    }
    await connect(node, gateway.port, "big", heart_beat="0,10000", options=options)
    await connect(node, gateway.port, "reader", heart_beat="0,10000", options=options)
    room_big = await node.subscribe("big", "/sub/chat/4")
    room_reader = await node.subscribe("reader", "/sub/chat/4")

    # 60 KiB of numbered pieces: any lost, doubled or reordered chunk shows.
    # (ASCII: the whole SEND frame must stay under --max-frame-size, 64 KiB.)
    text = "".join(f"{i:05d}:abcdef;" for i in range(60 * 1024 // 13 + 1))[: 60 * 1024]
    assert len(text) == 60 * 1024
    sent = {"memberId": 7, "nickname": "henhen", "message": text}
    body = json.dumps(sent, ensure_ascii=False)
    await node.do("publish", client="big", destination="/pub/chat/4", body=body, receipt="big")

    [send_start] = sent_frames(node, "big", "SEND")
    pieces = [event for event in node.of("sent", "big") if event["_at"] >= send_start["_at"]]
    frame_length = sum(piece["length"] for piece in pieces)
    assert f"content-length:{len(body.encode())}" in header_lines(send_start)
    # The SEND went out as ceil(size / 8 KiB) text messages of at most 8 KiB.
    assert len(pieces) == math.ceil(frame_length / chunk) >= 8
    assert all(piece["length"] <= chunk and not piece["binary"] for piece in pieces)

    for client, subscription in (("big", room_big), ("reader", room_reader)):
        [message] = await node.wait_messages(client, "/sub/chat/4", 1)
        payload = chat_message(message, subscription, 4, sent)
        assert payload["message"] == text
    await node.finish()


async def test_reconnects_after_restart_and_resubscribes(
    make_gateway: GatewayFactory, spawn: Spawn
) -> None:
    gateway = await make_gateway()
    port = gateway.port
    node = await spawn()
    options = {"reconnectDelay": 200, "heartbeatIncoming": 0, "heartbeatOutgoing": 0}
    await connect(node, port, "a", heart_beat="0,10000", options=options)
    first_id = await node.subscribe("a", "/sub/chat/4", standing=True)
    before = {"memberId": 7, "nickname": "henhen", "message": "before restart"}
    await node.do("publish", client="a", destination="/pub/chat/4", body=json.dumps(before))
    [message] = await node.wait_messages("a", "/sub/chat/4", 1)
    chat_message(message, first_id, 4, before)

    await gateway.shutdown()
    error = await node.wait_for(lambda e: e["event"] == "stompError", what="shutdown ERROR")
    assert error["headers"]["message"] == "server shutting down"
    close = await node.wait_for(lambda e: e["event"] == "close", what="close on shutdown")
    assert close["code"] == 1001
    assert len(gateway.registry) == 0

    restarted = await make_gateway(port=port)
    assert restarted.port == port
    reconnected = await node.wait_for(
        lambda e: e["event"] == "connected" and e["count"] == 2, what="reconnection"
    )
    assert reconnected["headers"]["version"] == "1.2"
    assert reconnected["subprotocol"] == "v12.stomp"
    resubscribed = await node.wait_for(
        lambda e: e["event"] == "resubscribed" and e["count"] == 2, what="re-subscription"
    )
    second_id = resubscribed["ids"]["/sub/chat/4"]
    assert len(restarted.registry) == 1

    after = {"memberId": 7, "nickname": "henhen", "message": "after restart"}
    await node.do(
        "publish", client="a", destination="/pub/chat/4", body=json.dumps(after), receipt="after"
    )
    messages = await node.wait_messages("a", "/sub/chat/4", 2)
    assert len(messages) == 2
    chat_message(messages[1], second_id, 4, after)
    # The restarted gateway's history holds only what it was sent itself.
    while restarted.persister.lag:
        await asyncio.sleep(0.01)
    [stored] = await restarted.store.history(4, before=None, limit=10)
    assert stored.id == json.loads(messages[1]["body"])["id"]
    # Refused connection attempts while the gateway was down are expected.
    await node.finish("stompError", "wsError")
    assert [e["count"] for e in node.of("connected")] == [1, 2]
