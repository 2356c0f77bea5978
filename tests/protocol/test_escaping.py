from __future__ import annotations

# Tests for :mod:`protocol.escaping` (STOMP 1.2 §Value Encoding).
import pytest

from protocol.errors import LocalProtocolError, MalformedFrame
from protocol.escaping import check_unescaped, escape, escapes_headers, unescape
from protocol.frames import Command

ESCAPING_VERSIONS = ("1.1", "1.2")


@pytest.mark.parametrize(
    ("command", "version", "expected"),
    [
        (Command.SEND, "1.0", False),
        (Command.MESSAGE, "1.0", False),
        (Command.CONNECT, "1.0", False),
        (Command.SEND, "1.1", True),
        (Command.MESSAGE, "1.1", True),
        (Command.ERROR, "1.1", True),
        (Command.SEND, "1.2", True),
        (Command.SUBSCRIBE, "1.2", True),
        (Command.RECEIPT, "1.2", True),
        # CONNECT and CONNECTED are never escaped, for 1.0 peers.
        (Command.CONNECT, "1.1", False),
        (Command.CONNECT, "1.2", False),
        (Command.CONNECTED, "1.1", False),
        (Command.CONNECTED, "1.2", False),
    ],
)
def test_escapes_headers(command: Command, version: str, expected: bool) -> None:
    assert escapes_headers(command, version) is expected


@pytest.mark.parametrize(
    ("version", "raw", "escaped"),
    [
        ("1.1", "plain", "plain"),
        ("1.1", "a\nb", "a\\nb"),
        ("1.1", "a:b", "a\\cb"),
        ("1.1", "a\\b", "a\\\\b"),
        ("1.1", "\\n", "\\\\n"),
        ("1.1", "\n:\\", "\\n\\c\\\\"),
        ("1.2", "a\rb", "a\\rb"),
        ("1.2", "a\nb", "a\\nb"),
        ("1.2", "a:b", "a\\cb"),
        ("1.2", "a\\b", "a\\\\b"),
        ("1.2", "\r\n:\\", "\\r\\n\\c\\\\"),
        ("1.2", "", ""),
        ("1.2", "caf\u00e9 \u20ac", "caf\u00e9 \u20ac"),
        ("1.2", "\t", "\t"),
    ],
)
def test_escape_and_unescape(version: str, raw: str, escaped: str) -> None:
    assert escape(raw, version) == escaped
    assert unescape(escaped, version) == raw


def test_carriage_return_cannot_be_escaped_in_1_1() -> None:
    # STOMP 1.1 has no \r escape, and a raw CR before the EOL reads as CRLF.
    with pytest.raises(LocalProtocolError):
        escape("a\rb", "1.1")


@pytest.mark.parametrize("version", ESCAPING_VERSIONS)
@pytest.mark.parametrize(
    "text",
    [
        "a\\tb",  # undefined escape
        "\\t",
        "a\\",  # lone backslash at the end
        "\\",
        "\\x41",
        "\\C",  # escapes are case-sensitive
        "\\N",
        "ok\\cfine\\q",
    ],
)
def test_undefined_escape_is_malformed(version: str, text: str) -> None:
    with pytest.raises(MalformedFrame) as info:
        unescape(text, version)
    assert info.value.message == "invalid header escape"


def test_carriage_return_escape_is_undefined_in_1_1() -> None:
    assert unescape("a\\rb", "1.2") == "a\rb"
    with pytest.raises(MalformedFrame):
        unescape("a\\rb", "1.1")


@pytest.mark.parametrize("version", ESCAPING_VERSIONS)
def test_unescape_reads_left_to_right(version: str) -> None:
    # "\\\\n" is an escaped backslash followed by "n", not a newline.
    assert unescape("\\\\n", version) == "\\n"
    assert unescape("\\\\\\n", version) == "\\\n"
    assert unescape("\\\\c", version) == "\\c"


@pytest.mark.parametrize("text", ["", "plain", "a:b", "caf\u00e9", "\t", "a\\b"])
def test_check_unescaped_accepts(text: str) -> None:
    assert check_unescaped(text) == text


@pytest.mark.parametrize("text", ["a\nb", "a\rb", "a\0b", "\n", "\r\n"])
def test_check_unescaped_refuses_eol_and_nul(text: str) -> None:
    with pytest.raises(LocalProtocolError):
        check_unescaped(text)
