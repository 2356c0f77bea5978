"""
The demo chat page (``gateway/static/index.html``) in a real headless Chromium.

``tests/js/browser_chat.mjs`` drives the system Chromium (``/usr/bin/chromium``,
installed by ``scripts/setup``) through ``playwright-core``, which never
downloads a browser: two people join one room, the second sees the first's
message from the history API, both see each other's messages live. The
screenshot it takes is kept as ``test-artifacts/demo-chat.png``.
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
from tests.conftest import GatewayFactory
from tests.gateway.node import require_packages

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "js"
SCRIPT = JS_DIR / "browser_chat.mjs"
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


async def test_two_people_chat_in_chromium(make_gateway: GatewayFactory) -> None:
    _require_browser()
    # A non-default endpoint: the page must take it from its stomp-endpoint meta tag.
    gateway = await make_gateway(endpoint=("/stomp",))
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "demo-chat.png"
    screenshot.unlink(missing_ok=True)
    process = await asyncio.create_subprocess_exec(
        "node",
        str(SCRIPT),
        f"http://127.0.0.1:{gateway.port}/",
        str(screenshot),
        "4",
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
        pytest.fail(f"browser_chat.mjs did not finish within {NODE_TIMEOUT} s")
    output = stdout.decode(errors="replace")
    report = f"exit code {process.returncode}\nstdout:\n{output}\nstderr:\n{stderr.decode()}"
    assert process.returncode == 0, report
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])

    assert result["ok"] is True, report
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
