"""
Driving the scriptable Node.js STOMP clients of ``tests/js`` from the tests.

``stompjs_client.mjs``, ``variants_client.mjs`` and ``legacy_client.cjs`` speak
one line protocol (``tests/js/harness.cjs``): JSON actions in on stdin, JSON
events out on stdout. :class:`NodeClient` drives one such process,
:func:`spawn_fixture` makes the fixture that starts them, and
:func:`check_connected`, :func:`chat_message` and :func:`pong_message` check
frames as these clients report them.
The tests import this module as ``nodejs``: their ``node`` is a NodeClient.

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
from tests.support.stomp_client import CHAT_FIELDS, SERVER

JS_DIR = Path(__file__).resolve().parents[1] / "js"

Event = dict[str, Any]
Spawn = Callable[..., Awaitable["NodeClient"]]

WAIT = 10.0  # seconds any single expected event may take
OBJECT_ID = re.compile(r"[0-9a-f]{24}")
CREATE_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?")
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
    """One running Node client script: send actions, collect what it reports."""

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

    async def subscribe(self, client: str, destination: str, **fields: Any) -> str:
        """Subscribe and wait for the RECEIPT, so the subscription is live; return its id."""
        receipt = f"sub-{client}-{len(self.events)}"
        done = await self.do(
            "subscribe", client=client, destination=destination, receipt=receipt, **fields
        )
        assert done["receipt"]["headers"] == {"receipt-id": receipt}
        subscription: str = done["id"]
        return subscription

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


def require_packages(*packages: str) -> None:
    """Fail the test unless every npm package is installed in ``tests/js``."""
    for package in packages:
        if not (JS_DIR / "node_modules" / package / "package.json").is_file():
            pytest.fail(
                f"{package} is not installed in {JS_DIR / 'node_modules'}: "
                "run `npm ci --prefix tests/js` from the repository root"
            )


def spawn_fixture(script: str, *packages: str) -> Any:
    """
    A ``spawn`` fixture for ``node tests/js/<script>``, which needs the npm
    ``packages``: ``await spawn(**scenario)`` starts one process, with the
    keyword arguments as its scenario; whatever still runs is killed afterwards.
    """

    @pytest.fixture(name="spawn")
    async def spawn() -> AsyncIterator[Spawn]:
        require_packages(*packages)
        started: list[NodeClient] = []

        async def start(**scenario: Any) -> NodeClient:
            scenario.setdefault("timeoutMs", 60_000)
            process = await asyncio.create_subprocess_exec(
                "node",
                str(JS_DIR / script),
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

    return spawn


def ws_url(port: int) -> str:
    """The gateway's default STOMP WebSocket endpoint."""
    return f"ws://127.0.0.1:{port}/ws"


def check_connected(headers: dict[str, str], version: str, heart_beat: str) -> None:
    """Check a CONNECTED frame's headers: exactly these, and a 16-hex-digit session."""
    assert headers == {
        "version": version,
        "heart-beat": heart_beat,
        "server": SERVER,
        "session": headers["session"],
    }
    assert re.fullmatch(r"[0-9a-f]{16}", headers["session"])


def chat_message(
    event: Event, subscription: str, room: int, sent: dict[str, Any]
) -> dict[str, Any]:
    """
    Check every header and field of a chat MESSAGE received by a Node client
    and return its payload.

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


def pong_message(event: Event, subscription: str) -> None:
    """Check the MESSAGE that answers a ping on ``/sub/pong``."""
    assert event["body"] == "pong"
    assert event["callback"] == subscription
    assert OBJECT_ID.fullmatch(event["headers"]["message-id"])
    assert event["headers"] == {
        "subscription": subscription,
        "destination": "/sub/pong",
        "message-id": event["headers"]["message-id"],
        "content-type": "text/plain;charset=UTF-8",
        "content-length": "4",
    }


async def wait_registry(gateway: Gateway, size: int, deadline: float = 5.0) -> None:
    """Poll until the gateway holds exactly ``size`` subscriptions."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while len(gateway.registry) != size:
        assert loop.time() < end, f"registry still holds {len(gateway.registry)}, want {size}"
        await asyncio.sleep(0.02)
