"""Log output: ``--log-format json`` writes one object per line with the session's fields."""

from __future__ import annotations

import json
import logging
import sys

from gateway.logs import TEXT_FORMAT, JsonFormatter


def record(message: str, *args: object, **extra: str) -> logging.LogRecord:
    made = logging.LogRecord(
        "gateway.transport.connection", logging.INFO, __file__, 1, message, args, None
    )
    made.__dict__.update(extra)
    return made


def test_json_line_carries_time_level_logger_message_and_fields() -> None:
    line = JsonFormatter().format(
        record(
            "session %s closed: %s",
            "ab12",
            "bye",
            session="ab12",
            remote="10.0.0.1:5000",
            event="closed",
            reason="heart-beat timeout",
        )
    )
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["time"].endswith("+00:00")
    assert entry["level"] == "info"
    assert entry["logger"] == "gateway.transport.connection"
    assert entry["message"] == "session ab12 closed: bye"
    assert entry["session"] == "ab12"
    assert entry["remote"] == "10.0.0.1:5000"
    assert entry["event"] == "closed"
    assert entry["reason"] == "heart-beat timeout"


def test_json_line_leaves_out_absent_fields_and_keeps_newlines_escaped() -> None:
    entry = json.loads(JsonFormatter().format(record("two\nlines")))
    assert entry["message"] == "two\nlines"
    assert not {"session", "remote", "event", "reason"} & set(entry)


def test_json_line_carries_the_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failed = logging.LogRecord(
            "gateway", logging.ERROR, __file__, 1, "failed", (), exc_info=sys.exc_info()
        )
    entry = json.loads(JsonFormatter().format(failed))
    assert "RuntimeError: boom" in entry["exception"]


def test_text_format_stays_human() -> None:
    text = logging.Formatter(TEXT_FORMAT).format(
        record("session %s opened", "ab12", event="opened")
    )
    assert text.endswith(" INFO gateway.transport.connection: session ab12 opened")
