"""
The demo chat page (``gateway/static/index.html``) in a real headless Chromium.

``tests/js/browser_chat.mjs`` drives the system Chromium (``/usr/bin/chromium``,
installed by ``scripts/setup``) through ``playwright-core``, which never
downloads a browser: two people join one room, the second sees the first's
message from the history API, both see each other's messages live. The
screenshot it takes is kept as ``test-artifacts/demo-chat.png``.

``tests/js/cross_origin.mjs`` serves a page of another origin that reads the
REST resources as the seed's front end does: with credentials and an
``authorization`` header, which Chromium allows only with the CORS grant.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from gateway import Gateway
from tests.support.node import require_packages
from tests.support.servers import GatewayFactory, free_port
from tests.support.stomp_client import StompTestClient
from tests.support.tokens import SECRET, hs256

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "js"
SCRIPT = JS_DIR / "browser_chat.mjs"
CROSS_ORIGIN = JS_DIR / "cross_origin.mjs"
STATIC = ROOT / "gateway" / "static"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
NODE_TIMEOUT = 90.0  # seconds; the script gives up after 60 on its own


def _require_browser() -> None:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup (apt-get install chromium)")
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: the browser test needs Node 20")
    require_packages("playwright-core")


async def _get(url: str) -> tuple[int, Message, bytes]:
    def fetch() -> tuple[int, Message, bytes]:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers, response.read()

    return await asyncio.to_thread(fetch)


async def test_demo_page_loads_the_vendored_stompjs(gateway: Gateway) -> None:
    base = f"http://127.0.0.1:{gateway.port}"
    status, headers, body = await _get(base + "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert '<meta name="stomp-endpoint" content="/ws">' in page
    assert '<script src="/static/stomp.umd.min.js"></script>' in page
    assert "7.5.0" in page  # the vendored version is named in the page

    status, headers, body = await _get(base + "/static/stomp.umd.min.js")
    assert status == 200
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert body == (STATIC / "stomp.umd.min.js").read_bytes()
    assert b"StompJs" in body

    status, headers, body = await _get(base + "/static/stompjs-LICENSE.txt")
    assert status == 200
    assert b"Apache License" in body


async def _run_node(*args: str) -> dict[str, Any]:
    """Run a Node script of ``tests/js``; return the JSON of its last stdout line."""
    process = await asyncio.create_subprocess_exec(
        "node",
        *args,
        cwd=JS_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(NODE_TIMEOUT):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{args[0]} did not finish within {NODE_TIMEOUT} s")
    output = stdout.decode(errors="replace")
    report = f"exit code {process.returncode}\nstdout:\n{output}\nstderr:\n{stderr.decode()}"
    assert process.returncode == 0, report
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


async def test_a_page_of_another_origin_reads_the_rest_api_with_credentials(
    make_gateway: GatewayFactory,
) -> None:
    _require_browser()
    page_port = free_port()
    page_origin = f"http://127.0.0.1:{page_port}"
    allowed = await make_gateway(jwt_secret=SECRET, allowed_origin=(page_origin,))
    elsewhere = await make_gateway(jwt_secret=SECRET, allowed_origin=("https://chat.example",))
    token = hs256(7, nickname="henhen")  # no rooms claim: the rooms member 7 joined
    for gateway in (allowed, elsewhere):
        client = await StompTestClient.open(gateway.port)
        await client.connect("1.2", headers=[("Authorization", f"Bearer {token}")])
        for room, text in ((4, "hello from 4"), (6, "hello from 6")):
            await client.subscribe(f"/sub/chat/{room}", f"s{room}")
            await client.send_chat(room, json.dumps({"message": text}).encode())
        await client.close()
        while gateway.persister.lag:
            await asyncio.sleep(0.01)

    result = await _run_node(
        str(CROSS_ORIGIN), f"http://127.0.0.1:{allowed.port}", str(page_port), token, "4"
    )
    assert result["ok"] is True, result
    assert result["origin"] == page_origin
    assert [message["text"] for message in result["history"]] == ["hello from 4"]
    assert result["lastConnect"]["memberId"] == "7"
    assert result["lastConnect"]["at"]
    assert result["lastMessages"] == [
        {"room": "4", "memberId": "7"},
        {"room": "6", "memberId": "7"},
    ]

    # A gateway that does not list the page's origin grants it nothing to read.
    result = await _run_node(
        str(CROSS_ORIGIN), f"http://127.0.0.1:{elsewhere.port}", str(page_port), token, "4"
    )
    assert result["ok"] is False
    assert result["history"] == []
    assert any("CORS policy" in message for message in result["console"]), result


async def test_two_people_chat_in_chromium(make_gateway: GatewayFactory) -> None:
    _require_browser()
    # A non-default endpoint: the page must take it from its stomp-endpoint meta tag.
    gateway = await make_gateway(endpoint=("/stomp",))
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "demo-chat.png"
    screenshot.unlink(missing_ok=True)
    url = f"http://127.0.0.1:{gateway.port}/"
    result = await _run_node(str(SCRIPT), url, str(screenshot), "4")

    assert result["ok"] is True, result
    assert result["endpoint"] == f"ws://127.0.0.1:{gateway.port}/stomp"
    assert result["status"] == "Connected"
    assert result["historyOnB"] == ["first message, before B joins"]
    texts = [
        "first message, before B joins",
        "안녕하세요 👋🏽 반가워요! 🎉",
        "<b>not bold</b> & <img src=x onerror=alert(1)>",
        "sent while B is in another room",
    ]
    assert result["otherRoom"] == "5"
    assert result["backOnB"] == texts
    assert result["messagesOnA"] == [
        {"text": texts[0], "own": True},
        {"text": texts[1], "own": True},
        {"text": texts[2], "own": False},
    ]
    assert result["messagesOnB"] == [
        {"text": texts[0], "own": False},
        {"text": texts[1], "own": False},
        {"text": texts[2], "own": True},
    ]
    # What the pages showed is what the gateway keeps; nothing went to the other room.
    status, _, body = await _get(f"http://127.0.0.1:{gateway.port}/v1/api/chat/5")
    assert json.loads(body) == []
    status, _, body = await _get(f"http://127.0.0.1:{gateway.port}/v1/api/chat/4")
    assert status == 200
    history = json.loads(body)
    assert [message["message"] for message in history] == texts
    assert [message["nickname"] for message in history] == ["henhen", "henhen", "토끼", "henhen"]
    member_a, member_b = result["memberA"], result["memberB"]
    assert [str(message["memberId"]) for message in history] == [
        member_a,
        member_a,
        member_b,
        member_a,
    ]

    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000
