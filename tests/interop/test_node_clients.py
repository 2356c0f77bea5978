"""
End-to-end tests with a real browser-style client: ``@stomp/stompjs`` 7 on Node 20.

Each test starts one ``node tests/js/stompjs_client.mjs`` process and drives it
with JSON actions on stdin (see the script's header) through the ``NodeClient``
helper of ``tests/support/node.py``; the process reports what its clients
receive as JSON lines. The clients use ``ws`` as WebSocket and
offer ``v12.stomp, v11.stomp, v10.stomp``, as browsers do.

The npm packages are pinned in ``tests/js/package-lock.json``; install them
with ``npm ci --prefix tests/js``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

from gateway import Gateway
from tests.support import node as nodejs
from tests.support.beats import spy_on_beats
from tests.support.node import OBJECT_ID, Event, NodeClient, Spawn, chat_message, wait_registry
from tests.support.servers import UNLIMITED_SENDS, GatewayFactory

HELLO = "안녕하세요 👋🏽"

spawn = nodejs.spawn_fixture("stompjs_client.mjs", "@stomp/stompjs", "ws")


async def connect(
    node: NodeClient, gateway: Gateway, client: str, heart_beat: str = "0,10000", **options: Any
) -> Event:
    """
    Connect a stompjs client and check the CONNECTED frame.

    ``heart_beat`` is the server's expected offer: by default stompjs is told to
    beat neither way, so the server sends none and asks for one every 10 s.
    """
    done = await node.do("connect", client=client, url=nodejs.ws_url(gateway.port), **options)
    assert done["subprotocol"] == "v12.stomp"
    nodejs.check_connected(done["headers"], "1.2", heart_beat)
    return done


def chat(message: str, member_id: int = 7, nickname: str = "henhen") -> str:
    return json.dumps({"memberId": member_id, "nickname": nickname, "message": message})


async def barrier(node: NodeClient, sender: str, receivers: list[str], room: int) -> None:
    """
    Publish a marker to ``room`` and wait until every receiver has it.

    The gateway fans a message out to every subscriber's queue before it sends
    the RECEIPT, and each connection's queue is FIFO: anything queued for a
    receiver before the marker has arrived once the marker has.
    """
    marker = f"barrier-{len(node.events)}"
    await node.do(
        "publish",
        client=sender,
        destination=f"/pub/chat/{room}",
        body=chat(marker, 0, "barrier"),
        receipt=marker,
    )
    for receiver in receivers:
        await node.wait_for(_marker_at(receiver, marker), what=f"barrier {marker} at {receiver}")


def _marker_at(receiver: str, marker: str) -> Callable[[Event], bool]:
    def arrived(event: Event) -> bool:
        return bool(
            event["event"] == "message"
            and event["client"] == receiver
            and json.loads(event["body"]).get("message") == marker
        )

    return arrived


def _closed(client: str) -> Callable[[Event], bool]:
    def closed(event: Event) -> bool:
        return bool(event["event"] == "close" and event["client"] == client)

    return closed


async def test_chat_message_round_trip_keeps_korean_and_emoji(
    gateway: Gateway, spawn: Spawn
) -> None:
    node = await spawn()
    await connect(node, gateway, "a")
    subscription = await node.subscribe("a", "/sub/chat/4")
    assert len(gateway.registry) == 1
    sent = {"memberId": 7, "nickname": "henhen", "message": HELLO}
    await node.do("publish", client="a", destination="/pub/chat/4", body=json.dumps(sent))

    [message] = await node.wait_messages("a", "/sub/chat/4", 1)
    payload = chat_message(message, subscription, 4, sent)
    assert payload["message"] == HELLO
    assert HELLO.encode() in base64.b64decode(message["bodyBase64"])
    await node.finish()
    assert len(gateway.registry) == 0


async def test_file_message(gateway: Gateway, spawn: Spawn) -> None:
    node = await spawn()
    await connect(node, gateway, "a")
    subscription = await node.subscribe("a", "/sub/chat/4")
    sent = {"memberId": 7, "nickname": "henhen", "fileId": 12, "fileName": "a.png"}
    await node.do("publish", client="a", destination="/pub/chat/4", body=json.dumps(sent))

    [message] = await node.wait_messages("a", "/sub/chat/4", 1)
    payload = chat_message(message, subscription, 4, sent)
    assert payload["message"] is None
    assert payload["fileId"] == 12
    assert payload["fileName"] == "a.png"
    await node.finish()


async def test_two_rooms_do_not_cross_talk(gateway: Gateway, spawn: Spawn) -> None:
    node = await spawn()
    await connect(node, gateway, "a")
    await connect(node, gateway, "b")
    sub_a = await node.subscribe("a", "/sub/chat/4")
    sub_b = await node.subscribe("b", "/sub/chat/5")
    sent_a = {"memberId": 1, "nickname": "in-four", "message": "room four"}
    sent_b = {"memberId": 2, "nickname": "in-five", "message": "room five"}
    await node.do("publish", client="a", destination="/pub/chat/4", body=json.dumps(sent_a))
    await node.do("publish", client="b", destination="/pub/chat/5", body=json.dumps(sent_b))
    await barrier(node, "a", ["a"], 4)
    await barrier(node, "b", ["b"], 5)

    [message_a, _] = node.messages("a")
    [message_b, _] = node.messages("b")
    chat_message(message_a, sub_a, 4, sent_a)
    chat_message(message_b, sub_b, 5, sent_b)
    assert all(e["headers"]["destination"] == "/sub/chat/4" for e in node.messages("a"))
    assert all(e["headers"]["destination"] == "/sub/chat/5" for e in node.messages("b"))
    await node.finish()


async def test_duplicate_subscribe_delivers_once(gateway: Gateway, spawn: Spawn) -> None:
    node = await spawn()
    await connect(node, gateway, "a")
    first = await node.subscribe("a", "/sub/chat/4")
    second = await node.subscribe("a", "/sub/chat/4")
    assert first != second
    # duplicate-subscriptions=replace: the second SUBSCRIBE replaced the first.
    assert len(gateway.registry) == 1

    sent = [{"memberId": 7, "nickname": "henhen", "message": f"once {i}"} for i in range(3)]
    for i, body in enumerate(sent):
        # The sender is subscribed: its MESSAGE is queued before its RECEIPT.
        await node.do(
            "publish",
            client="a",
            destination="/pub/chat/4",
            body=json.dumps(body),
            receipt=f"once-{i}",
        )
    messages = node.messages("a")
    assert len(messages) == 3
    for message, body in zip(messages, sent, strict=True):
        chat_message(message, second, 4, body)
    await node.finish()


async def test_unsubscribing_the_replaced_duplicate_keeps_the_newer(
    gateway: Gateway, spawn: Spawn
) -> None:
    node = await spawn()
    await connect(node, gateway, "a")
    other_room = await node.subscribe("a", "/sub/chat/5")
    first = await node.subscribe("a", "/sub/chat/4")
    second = await node.subscribe("a", "/sub/chat/4")  # a re-render subscribes again
    await node.do("unsubscribe", client="a", id=first)
    await node.do("unsubscribe", client="a", id="never-subscribed")
    sent = {"memberId": 7, "nickname": "henhen", "message": "still here"}
    for room in (4, 5):
        # The RECEIPT comes after the UNSUBSCRIBEs took effect: the session lives.
        await node.do(
            "publish",
            client="a",
            destination=f"/pub/chat/{room}",
            body=json.dumps(sent),
            receipt=f"after-unsubscribe-{room}",
        )
    [message] = await node.wait_messages("a", "/sub/chat/4", 1)
    chat_message(message, second, 4, sent)
    [five] = await node.wait_messages("a", "/sub/chat/5", 1)
    chat_message(five, other_room, 5, sent)
    assert len(gateway.registry) == 2
    assert node.of("close") == []
    await node.finish()


async def test_thousand_messages_arrive_in_order(
    make_gateway: GatewayFactory, spawn: Spawn
) -> None:
    gateway = await make_gateway(**UNLIMITED_SENDS)  # one sender streams them all
    node = await spawn()
    await connect(node, gateway, "receiver")
    await connect(node, gateway, "sender")
    subscription = await node.subscribe("receiver", "/sub/chat/4")
    sent = [
        {"memberId": 7, "nickname": "henhen", "message": f"#{i:04d} {HELLO}"} for i in range(1000)
    ]
    await node.do(
        "publish",
        client="sender",
        destination="/pub/chat/4",
        bodies=[json.dumps(body) for body in sent],
        timeout=20.0,
    )
    await barrier(node, "sender", ["receiver"], 4)

    messages = node.messages("receiver")
    assert len(messages) == 1001  # the 1000, then the barrier
    payloads = [
        chat_message(message, subscription, 4, body)
        for message, body in zip(messages, sent, strict=False)
    ]
    assert [p["message"] for p in payloads] == [body["message"] for body in sent]
    assert len({p["id"] for p in payloads}) == 1000
    assert node.messages("sender") == []
    await node.finish()


async def test_dropped_sockets_leave_no_subscription(gateway: Gateway, spawn: Spawn) -> None:
    node = await spawn()
    await connect(node, gateway, "dropped")
    await connect(node, gateway, "killed")
    await node.subscribe("dropped", "/sub/chat/4")
    await node.subscribe("dropped", "/user/queue/errors")
    await node.subscribe("killed", "/sub/chat/4")
    await node.subscribe("killed", "/sub/pong")
    assert len(gateway.registry) == 4

    # ws.terminate(): the TCP connection goes away without DISCONNECT or close frame.
    await node.do("terminate", client="dropped")
    close = await node.wait_for(_closed("dropped"))
    assert close["code"] == 1006
    await wait_registry(gateway, 2)

    # SIGKILL: the process dies with its sockets; the kernel closes them.
    await node.kill()
    assert node.process.returncode == -9
    await wait_registry(gateway, 0)

    # process.exit() without deactivate().
    node = await spawn()
    await connect(node, gateway, "exits")
    await node.subscribe("exits", "/sub/chat/4")
    assert len(gateway.registry) == 1
    await node.send("exit", code=0)
    assert await asyncio.wait_for(node.process.wait(), nodejs.WAIT) == 0
    await wait_registry(gateway, 0)
    node.assert_healthy()

    loop = asyncio.get_running_loop()
    end = loop.time() + 5.0
    while gateway.connections:
        assert loop.time() < end, f"{len(gateway.connections)} connections still open"
        await asyncio.sleep(0.02)


async def test_idle_connection_with_heart_beats_stays_open(
    make_gateway: GatewayFactory, spawn: Spawn
) -> None:
    gateway = await make_gateway(heartbeat_interval=1000, heartbeat_floor=1000)
    node = await spawn()
    beats: dict[str, Any] = {
        "heart_beat": "1000,1000",
        "heartbeatIncoming": 1000,
        "heartbeatOutgoing": 1000,
    }
    await connect(node, gateway, "idle", **beats)
    await connect(node, gateway, "later", **beats)
    subscription = await node.subscribe("idle", "/sub/chat/4")
    taken = [spy_on_beats(connection) for connection in gateway.connections]

    await asyncio.sleep(5.0)
    assert node.of("close") == []
    # stompjs's beats (a text message "\n" each) were taken at the socket
    # (gateway/transport/websocket.py).
    assert all(answers.count(True) >= 3 for answers in taken), taken
    # The server beat about once a second; stompjs would have closed after 2 s without.
    assert len(node.of("heartbeat", "idle")) >= 3
    assert len(gateway.registry) == 1
    assert len(gateway.connections) == 2

    sent = {"memberId": 7, "nickname": "henhen", "message": "still there?"}
    await node.do("publish", client="later", destination="/pub/chat/4", body=json.dumps(sent))
    [message] = await node.wait_messages("idle", "/sub/chat/4", 1)
    chat_message(message, subscription, 4, sent)
    await node.finish()


async def test_silent_client_is_dropped_after_three_intervals(
    make_gateway: GatewayFactory, spawn: Spawn
) -> None:
    gateway = await make_gateway(heartbeat_interval=1000, heartbeat_floor=1000)
    node = await spawn()
    loop = asyncio.get_running_loop()
    # A bare ws connection: CONNECT promising beats every second, SUBSCRIBE, then silence.
    await node.do(
        "rawConnect",
        client="raw",
        url=nodejs.ws_url(gateway.port),
        frames=[
            "CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:1000,1000\n\n\0",
            "SUBSCRIBE\nid:raw-0\ndestination:/sub/chat/4\nreceipt:raw-sub\n\n\0",
        ],
        waitFor="RECEIPT",
    )
    raw_silent_since = loop.time()
    # stompjs whose outgoing heart-beats are swallowed after CONNECT promised them.
    await connect(
        node,
        gateway,
        "muted",
        heart_beat="1000,1000",
        heartbeatIncoming=1000,
        heartbeatOutgoing=1000,
        muteHeartbeats=True,
    )
    await node.subscribe("muted", "/sub/chat/5")
    muted_silent_since = loop.time()
    assert len(gateway.registry) == 2

    for client, since in (("raw", raw_silent_since), ("muted", muted_silent_since)):
        close = await node.wait_for(_closed(client), 6.0, f"server closing {client}")
        assert close["code"] == 1008
        assert close["reason"] == "heart-beat timeout"
        # Three 1 s intervals of silence (tolerance 3), give or take scheduling.
        assert 2.0 <= close["_at"] - since <= 6.0, close["_at"] - since
    await wait_registry(gateway, 0, deadline=1.0)

    raw_frames = [e["data"] for e in node.of("raw", "raw")]
    assert raw_frames[0].startswith("CONNECTED\n")
    assert "heart-beat:1000,1000\n" in raw_frames[0]
    # CONNECTED and RECEIPT may share a WebSocket message when ready together.
    assert "\0RECEIPT\nreceipt-id:raw-sub\n\n\0" in "".join(raw_frames)
    assert "\n" in raw_frames  # the server kept beating while the client was silent
    assert node.of("heartbeatLost") == []
    await node.finish()


async def test_mixed_heart_beats_keep_every_deadline(
    make_gateway: GatewayFactory, spawn: Spawn
) -> None:
    """
    A client on stompjs's default 10 s heart-beats, then, just before the
    server owes it its first beat, one on 1 s beats and a silent one that
    promised 1 s: each session's deadlines hold whatever the others' are, so
    the 1 s client stays connected (stompjs closes after 2 s without server
    activity) and the silent one is closed after three intervals.
    """
    gateway = await make_gateway(heartbeat_interval=1000, heartbeat_floor=1000)
    node = await spawn()
    loop = asyncio.get_running_loop()
    await connect(
        node,
        gateway,
        "slow",
        heart_beat="10000,1000",
        heartbeatIncoming=10_000,
        heartbeatOutgoing=10_000,
    )
    await node.do("sleep", ms=9_300, timeout=20.0)
    one_second = {"heartbeatIncoming": 1000, "heartbeatOutgoing": 1000}
    await connect(node, gateway, "fast", heart_beat="1000,1000", **one_second)
    fast_since = loop.time()
    await connect(
        node,
        gateway,
        "muted",
        heart_beat="0,1000",
        heartbeatOutgoing=1000,
        muteHeartbeats=True,
    )
    muted_since = loop.time()

    close = await node.wait_for(_closed("muted"), 8.0, "server closing the silent client")
    assert close["code"] == 1008
    assert close["reason"] == "heart-beat timeout"
    # Three 1 s intervals of silence (tolerance 3), give or take scheduling.
    assert 2.0 <= close["_at"] - muted_since <= 6.0, close["_at"] - muted_since
    # Longer than three of the shorter interval, with the server beating all along.
    await asyncio.sleep(max(0.0, fast_since + 4.0 - loop.time()))
    assert len(node.of("heartbeat", "fast")) >= 3
    assert len(node.of("heartbeat", "slow")) >= 1
    assert [event["client"] for event in node.of("close")] == ["muted"]
    assert node.of("heartbeatLost") == []
    assert len(gateway.connections) == 2
    await node.finish()


async def test_receipt_for_publish(gateway: Gateway, spawn: Spawn) -> None:
    node = await spawn()
    await connect(node, gateway, "a")
    subscription = await node.subscribe("a", "/sub/chat/4")
    sent = {"memberId": 7, "nickname": "henhen", "message": "with receipt"}
    done = await node.do(
        "publish",
        client="a",
        destination="/pub/chat/4",
        body=json.dumps(sent),
        receipt="receipt-42",
    )
    assert done["published"] == 1
    assert done["receipt"] == {
        "event": "receipt",
        "client": "a",
        "command": "RECEIPT",
        "headers": {"receipt-id": "receipt-42"},
        "body": "",
    }
    # STOMP 1.2: the RECEIPT follows the SEND's effect, so the MESSAGE came first.
    [message] = node.messages("a")
    assert node.events.index(message) < node.events.index(done)
    chat_message(message, subscription, 4, sent)

    await node.do("disconnect", client="a")
    close = await node.wait_for(_closed("a"))
    assert (close["code"], close["reason"]) == (1000, "client disconnected")
    await wait_registry(gateway, 0)
    await node.finish()


async def test_ping_pongs_to_the_sender_only(gateway: Gateway, spawn: Spawn) -> None:
    node = await spawn()
    await connect(node, gateway, "pinger")
    await connect(node, gateway, "other")
    sub_pinger = await node.subscribe("pinger", "/sub/pong")
    sub_other = await node.subscribe("other", "/sub/pong")
    await node.subscribe("other", "/sub/chat/4")
    await node.do("publish", client="pinger", destination="/pub/ping", body="")

    [pong] = await node.wait_messages("pinger", "/sub/pong", 1)
    nodejs.pong_message(pong, sub_pinger)
    assert base64.b64decode(pong["bodyBase64"]) == b"pong"
    await barrier(node, "pinger", ["other"], 4)
    assert node.messages("other", "/sub/pong") == []

    # The other client's own ping is answered to it alone.
    await node.do("publish", client="other", destination="/pub/ping", body="", receipt="ping-2")
    [pong_other] = node.messages("other", "/sub/pong")
    assert pong_other["body"] == "pong"
    assert pong_other["headers"]["subscription"] == sub_other
    assert pong_other["headers"]["message-id"] != pong["headers"]["message-id"]
    assert len(node.messages("pinger", "/sub/pong")) == 1
    await node.finish()


async def test_invalid_json_is_reported_on_user_errors_queue(
    gateway: Gateway, spawn: Spawn
) -> None:
    node = await spawn()
    await connect(node, gateway, "a")
    await connect(node, gateway, "bystander")
    errors = await node.subscribe("a", "/user/queue/errors")
    room = await node.subscribe("a", "/sub/chat/4")
    await node.subscribe("bystander", "/user/queue/errors")
    await node.subscribe("bystander", "/sub/chat/4")
    body = '{"memberId":7,"nickname":"henhen","message":'
    # A plain receipt header: the rejected SEND must get no RECEIPT (stompjs would
    # report it as unhandled), only the receipt-id on the error MESSAGE.
    await node.do(
        "publish",
        client="a",
        destination="/pub/chat/4",
        body=body,
        headers={"receipt": "bad-send"},
    )

    [error] = await node.wait_messages("a", "/user/queue/errors", 1)
    try:
        json.loads(body)
    except json.JSONDecodeError as exc:
        reason = f"body is not valid JSON: {exc}"
    assert error["body"] == reason
    assert base64.b64decode(error["bodyBase64"]) == reason.encode()
    assert error["callback"] == errors
    assert OBJECT_ID.fullmatch(error["headers"]["message-id"])
    assert error["headers"] == {
        "subscription": errors,
        "destination": "/user/queue/errors",
        "message-id": error["headers"]["message-id"],
        "message": reason,
        "receipt-id": "bad-send",
        "content-type": "text/plain;charset=UTF-8",
        "content-length": str(len(reason.encode())),
    }

    # The session goes on: a valid SEND still works, for everyone in the room.
    sent = {"memberId": 7, "nickname": "henhen", "message": "valid again"}
    await node.do("publish", client="a", destination="/pub/chat/4", body=json.dumps(sent))
    [message] = await node.wait_messages("a", "/sub/chat/4", 1)
    chat_message(message, room, 4, sent)
    await node.wait_messages("bystander", "/sub/chat/4", 1)
    # Errors are the sender's own: the bystander got the chat message, no error.
    assert node.messages("bystander", "/user/queue/errors") == []
    assert node.of("close") == []
    assert node.of("unhandledReceipt") == []
    assert len(gateway.registry) == 4
    await node.finish()
