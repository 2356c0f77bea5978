"""The ``stomp-gateway`` command, run as a new user would: no options at all."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from websockets.asyncio.client import connect

from gateway.config import OPTIONS, env_name
from protocol import Command, Frame, Parser

DEFAULT_URL = "ws://127.0.0.1:8080/ws"


def _executable() -> str:
    found = shutil.which("stomp-gateway", path=os.path.dirname(sys.executable))
    assert found, "stomp-gateway is not installed next to the test interpreter"
    return found


def test_help_documents_every_option_and_its_variable() -> None:
    result = subprocess.run([_executable(), "--help"], capture_output=True, text=True, check=True)
    text = re.sub(r"\s+", " ", result.stdout)
    for option in OPTIONS:
        assert f"--{option.name}" in text
        assert env_name(option) in text


def test_python_dash_m_is_the_same_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--help"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("usage: stomp-gateway")


@pytest.mark.parametrize(
    ("argv", "environment", "reason"),
    [
        (["--port", "70000"], {}, "70000 is not a TCP port"),
        (["--partitioner", "random"], {}, "invalid choice: 'random'"),
        ([], {"STOMP_GATEWAY_PARTITIONER": "random"}, "'random' is not one of modulo, hash"),
    ],
)
def test_invalid_configuration_fails_with_one_clear_line(
    argv: list[str], environment: dict[str, str], reason: str
) -> None:
    result = subprocess.run(
        [_executable(), *argv],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **environment},
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("stomp-gateway: error: ")
    assert reason in line


def test_a_port_in_use_fails_with_one_clear_line_and_exit_code_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run(
            [_executable(), "--port", port], capture_output=True, text=True, check=False
        )
    assert result.returncode == 1
    assert "cannot start" in result.stderr
    assert "Traceback" not in result.stderr


def test_print_config_shows_the_effective_configuration_with_secrets_masked() -> None:
    uri = "mongodb://chat:s3cr3t@mongo:27017/chat"
    result = subprocess.run(
        [_executable(), "--port", "9000", "--print-config"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "STOMP_GATEWAY_MONGO_URI": uri, "STOMP_GATEWAY_LOG_FORMAT": "json"},
    )
    lines = result.stdout.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [env_name(option) for option in OPTIONS]
    assert "STOMP_GATEWAY_PORT=9000" in lines
    assert "STOMP_GATEWAY_LOG_FORMAT=json" in lines
    assert "STOMP_GATEWAY_MONGO_URI=mongodb://chat:*****@mongo:27017/chat" in lines
    assert "s3cr3t" not in result.stdout


async def _frames(websocket: object, parser: Parser, count: int) -> list[Frame]:
    frames: list[Frame] = []
    while len(frames) < count:
        data = await asyncio.wait_for(websocket.recv(), 5)  # type: ignore[attr-defined]
        raw = data.encode() if isinstance(data, str) else data
        frames.extend(event for event in parser.feed(raw) if isinstance(event, Frame))
    return frames


async def test_no_options_serves_the_chat_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(_executable(), stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stderr is not None
        while b"listening on 127.0.0.1:8080" not in await process.stderr.readline():
            assert process.returncode is None
        async with connect(DEFAULT_URL, subprotocols=["v12.stomp"]) as websocket:
            parser = Parser(version="1.2")
            await websocket.send("CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
            (connected,) = await _frames(websocket, parser, 1)
            assert connected.command is Command.CONNECTED
            await websocket.send("SUBSCRIBE\nid:sub-0\ndestination:/sub/chat/4\n\n\0")
            body = '{"memberId":7,"nickname":"henhen","message":"hi"}'
            await websocket.send(f"SEND\ndestination:/pub/chat/4\n\n{body}\0")
            (message,) = await _frames(websocket, parser, 1)
            assert json.loads(message.body)["message"] == "hi"
        history = await asyncio.to_thread(
            lambda: urllib.request.urlopen("http://127.0.0.1:8080/v1/api/chat/4").read()
        )
        assert [item["message"] for item in json.loads(history)] == ["hi"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
