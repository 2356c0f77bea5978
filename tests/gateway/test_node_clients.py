"""
End-to-end tests with a real browser-style client: ``@stomp/stompjs`` 7 on Node 20.

Each test starts one ``node tests/js/stompjs_client.mjs`` process and drives it
with JSON actions on stdin (see the script's header); the process reports what
its clients receive as JSON lines. The clients use ``ws`` as WebSocket and
offer ``v12.stomp, v11.stomp, v10.stomp``, as browsers do.

The npm packages are pinned in ``tests/js/package-lock.json``; install them
with ``npm ci --prefix tests/js``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway import Gateway
from tests.conftest import GatewayFactory

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SCRIPT = JS_DIR / "stompjs_client.mjs"

Event = dict[str, Any]
Spawn = Callable[..., Awaitable["NodeClient"]]

WAIT = 10.0  # seconds any single expected event may take
OBJECT_ID = re.compile(r"[0-9a-f]{24}")
CREATE_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?")
CHAT_FIELDS = [  # the seed's field order
    "id",
    "chatRoomId",
    "memberId",
    "nickname",
    "message",
    "fileId",
    "fileName",
    "createAt",
]
HELLO = "안녕하세요 👋🏽"
# Events a well-behaved session never produces.
UNEXPECTED = (
    "fatal",
    "stompError",
    "wsError",
    "unhandledMessage",
    "unhandledReceipt",
    "unhandledFrame",
    "heartbeatLost",
)


class NodeClient:
    """One running ``stompjs_client.mjs``: send actions, collect what it reports."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[Event] = []
        self.stderr = ""
        self.exited = False
        self._changed = asyncio.Condition()
        self._seq = itertools.count()
        self._readers = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    async def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        loop = asyncio.get_running_loop()
        async for line in self.process.stdout:
            event: Event = json.loads(line)
            event["_at"] = loop.time()
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        async with self._changed:
            self.exited = True
            self._changed.notify_all()

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.stderr += line.decode(errors="replace")

    def _describe(self) -> str:
        tail = "\n".join(json.dumps(event, ensure_ascii=False) for event in self.events[-10:])
        return (
            f"node exit code: {self.process.returncode}\nstderr:\n{self.stderr}\n"
            f"last events:\n{tail}"
        )

    async def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float = WAIT, what: str = "event"
    ) -> Event:
        """Return the first event matching ``predicate``, waiting for it if need be."""
        found: list[Event] = []

        def ready() -> bool:
            found.extend(event for event in self.events if predicate(event))
            return bool(found) or self.exited

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(ready)
        except TimeoutError:
            pytest.fail(f"no {what} within {timeout} s\n{self._describe()}")
        if not found:
            if self.exited:
                await self.process.wait()
            pytest.fail(f"node exited before {what}\n{self._describe()}")
        return found[0]

    async def send(self, op: str, **fields: Any) -> int:
        """Queue one action without waiting for it; return its sequence number."""
        seq = next(self._seq)
        assert self.process.stdin is not None
        line = json.dumps({"op": op, "seq": seq, **fields}) + "\n"
        self.process.stdin.write(line.encode())
        await self.process.stdin.drain()
        return seq

    async def do(self, op: str, *, timeout: float = WAIT, **fields: Any) -> Event:
        """Run one action and return its ``done`` report."""
        seq = await self.send(op, **fields)

        def finished(event: Event) -> bool:
            return event["event"] in ("done", "fatal") and event.get("seq", seq) == seq

        return await self.wait_for(finished, timeout, f"result of {op} #{seq}")

    def of(self, kind: str, client: str | None = None) -> list[Event]:
        """Return the events of one kind, optionally for one client."""
        return [
            event
            for event in self.events
            if event["event"] == kind and (client is None or event.get("client") == client)
        ]

    def messages(self, client: str, destination: str | None = None) -> list[Event]:
        """Return the MESSAGEs ``client`` received, optionally to one destination."""
        return [
            event
            for event in self.of("message", client)
            if destination is None or event["headers"]["destination"] == destination
        ]

    async def wait_messages(
        self, client: str, destination: str, count: int, timeout: float = WAIT
    ) -> list[Event]:
        """Wait until ``client`` has received ``count`` MESSAGEs to ``destination``."""
        await self.wait_for(
            lambda _: len(self.messages(client, destination)) >= count,
            timeout,
            f"{count} messages to {destination} for {client}",
        )
        return self.messages(client, destination)

    def assert_healthy(self, *allowed: str) -> None:
        """Check that nothing unexpected (ERROR, unhandled frame...) was reported."""
        bad = [e for e in self.events if e["event"] in UNEXPECTED and e["event"] not in allowed]
        assert not bad, f"unexpected events: {bad}\n{self._describe()}"

    async def finish(self, *allowed: str) -> None:
        """End stdin: the clients DISCONNECT and node must exit 0."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            async with asyncio.timeout(WAIT):
                await self.process.wait()
                await asyncio.gather(*self._readers)
        except TimeoutError:
            pytest.fail(f"node did not exit within {WAIT} s\n{self._describe()}")
        assert self.process.returncode == 0, self._describe()
        self.assert_healthy(*allowed)

    async def kill(self) -> None:
        """SIGKILL the process (if still running) and wait for it."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        await asyncio.gather(*self._readers, return_exceptions=True)


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """Start ``stompjs_client.mjs`` processes; whatever still runs is killed afterwards."""
    for package in ("@stomp/stompjs", "ws"):
        if not (JS_DIR / "node_modules" / package / "package.json").is_file():
            pytest.fail(
                f"{package} is not installed in {JS_DIR / 'node_modules'}: "
                "run `npm ci --prefix tests/js` from the repository root"
            )
    started: list[NodeClient] = []

    async def start(**scenario: Any) -> NodeClient:
        scenario.setdefault("timeoutMs", 60_000)
        process = await asyncio.create_subprocess_exec(
            "node",
            str(SCRIPT),
            json.dumps(scenario),
            cwd=JS_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=2**22,
        )
        client = NodeClient(process)
        started.append(client)
        return client

    yield start
    for client in started:
        await client.kill()


def url(gateway: Gateway) -> str:
    return f"ws://127.0.0.1:{gateway.port}/ws"


async def connect(
    node: NodeClient, gateway: Gateway, client: str, heart_beat: str = "0,10000", **options: Any
) -> Event:
    """
    Connect a stompjs client and check the CONNECTED frame.

    ``heart_beat`` is the server's expected offer: by default stompjs is told to
    beat neither way, so the server sends none and asks for one every 10 s.
    """
    done = await node.do("connect", client=client, url=url(gateway), **options)
    assert done["subprotocol"] == "v12.stomp"
    headers = done["headers"]
    assert set(headers) == {"version", "heart-beat", "server", "session"}
    assert headers["version"] == "1.2"
    assert headers["heart-beat"] == heart_beat
    assert headers["server"] == "stomp-gateway/0.1.0"
    assert re.fullmatch(r"[0-9a-f]{16}", headers["session"])
    return done


async def subscribe(node: NodeClient, client: str, destination: str, **options: Any) -> str:
    """Subscribe and wait for the RECEIPT, so the subscription is live; return its id."""
    receipt = f"sub-receipt-{client}-{len(node.events)}"
    done = await node.do(
        "subscribe", client=client, destination=destination, receipt=receipt, **options
    )
    assert done["receipt"]["headers"] == {"receipt-id": receipt}
    subscription_id: str = done["id"]
    return subscription_id


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


def chat_message(
    event: Event, subscription: str, room: int, sent: dict[str, Any]
) -> dict[str, Any]:
    """
    Check every header and field of a chat MESSAGE received by stompjs and
    return its payload.

    ``sent`` is the JSON body the client SENT; the text must come back byte-exact.
    """
    raw = base64.b64decode(event["bodyBase64"])
    assert event["command"] == "MESSAGE"
    assert event["body"] == raw.decode("utf-8")
    payload: dict[str, Any] = json.loads(raw)
    assert list(payload) == CHAT_FIELDS
    headers = dict(event["headers"])
    # The record's position on the in-memory bus: one partition, offsets from 0.
    assert headers.pop("x-partition") == "0"
    assert headers.pop("x-offset").isdigit()
    assert headers == {
        "subscription": subscription,
        "destination": f"/sub/chat/{room}",
        "message-id": payload["id"],
        "content-type": "application/json",
        "content-length": str(len(raw)),
    }
    assert event["callback"] == subscription
    assert OBJECT_ID.fullmatch(payload["id"])
    assert CREATE_AT.fullmatch(payload["createAt"])
    # createAt is the local time (UTC by default) of the ObjectId's creation.
    created = datetime.datetime.fromisoformat(payload["createAt"]).replace(tzinfo=datetime.UTC)
    id_seconds = int(payload["id"][:8], 16)
    assert id_seconds == int(created.timestamp())
    assert abs(time.time() - id_seconds) < 120
    assert payload == {
        "id": payload["id"],
        "chatRoomId": room,
        "memberId": sent["memberId"],
        "nickname": sent["nickname"],
        "message": sent.get("message"),
        "fileId": sent.get("fileId"),
        "fileName": sent.get("fileName"),
        "createAt": payload["createAt"],
    }
    # Compact UTF-8 JSON, as the seed (Jackson) writes it: no \u escapes.
    assert raw == json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    if sent.get("message") is not None:
        assert json.dumps(sent["message"], ensure_ascii=False).encode() in raw
    return payload


async def wait_registry(gateway: Gateway, size: int, deadline: float = 5.0) -> None:
    """Poll until the gateway holds exactly ``size`` subscriptions."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while len(gateway.registry) != size:
        assert loop.time() < end, f"registry still holds {len(gateway.registry)}, want {size}"
        await asyncio.sleep(0.02)


async def test_chat_message_round_trip_keeps_korean_and_emoji(
    gateway: Gateway, spawn: Spawn
) -> None:
    node = await spawn()
    await connect(node, gateway, "a")
    subscription = await subscribe(node, "a", "/sub/chat/4")
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
    subscription = await subscribe(node, "a", "/sub/chat/4")
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
    sub_a = await subscribe(node, "a", "/sub/chat/4")
    sub_b = await subscribe(node, "b", "/sub/chat/5")
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
    first = await subscribe(node, "a", "/sub/chat/4")
    second = await subscribe(node, "a", "/sub/chat/4")
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


async def test_thousand_messages_arrive_in_order(gateway: Gateway, spawn: Spawn) -> None:
    node = await spawn()
    await connect(node, gateway, "receiver")
    await connect(node, gateway, "sender")
    subscription = await subscribe(node, "receiver", "/sub/chat/4")
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
    await subscribe(node, "dropped", "/sub/chat/4")
    await subscribe(node, "dropped", "/user/queue/errors")
    await subscribe(node, "killed", "/sub/chat/4")
    await subscribe(node, "killed", "/sub/pong")
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
    await subscribe(node, "exits", "/sub/chat/4")
    assert len(gateway.registry) == 1
    await node.send("exit", code=0)
    assert await asyncio.wait_for(node.process.wait(), WAIT) == 0
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
    subscription = await subscribe(node, "idle", "/sub/chat/4")

    await asyncio.sleep(5.0)
    assert node.of("close") == []
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
        url=url(gateway),
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
    await subscribe(node, "muted", "/sub/chat/5")
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
    assert "RECEIPT\nreceipt-id:raw-sub\n\n\0" in raw_frames
    assert "\n" in raw_frames  # the server kept beating while the client was silent
    assert node.of("heartbeatLost") == []
    await node.finish()


async def test_receipt_for_publish(gateway: Gateway, spawn: Spawn) -> None:
    node = await spawn()
    await connect(node, gateway, "a")
    subscription = await subscribe(node, "a", "/sub/chat/4")
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
    sub_pinger = await subscribe(node, "pinger", "/sub/pong")
    sub_other = await subscribe(node, "other", "/sub/pong")
    await subscribe(node, "other", "/sub/chat/4")
    await node.do("publish", client="pinger", destination="/pub/ping", body="")

    [pong] = await node.wait_messages("pinger", "/sub/pong", 1)
    assert pong["body"] == "pong"
    assert base64.b64decode(pong["bodyBase64"]) == b"pong"
    assert pong["callback"] == sub_pinger
    assert OBJECT_ID.fullmatch(pong["headers"]["message-id"])
    assert pong["headers"] == {
        "subscription": sub_pinger,
        "destination": "/sub/pong",
        "message-id": pong["headers"]["message-id"],
        "content-type": "text/plain;charset=UTF-8",
        "content-length": "4",
    }
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
    errors = await subscribe(node, "a", "/user/queue/errors")
    room = await subscribe(node, "a", "/sub/chat/4")
    await subscribe(node, "bystander", "/user/queue/errors")
    await subscribe(node, "bystander", "/sub/chat/4")
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
