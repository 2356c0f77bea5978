"""
Header value escaping (STOMP 1.2 §Value Encoding).

STOMP 1.0 escapes nothing. STOMP 1.1 defines ``\\n``, ``\\c`` and ``\\\\``;
STOMP 1.2 adds ``\\r``. CONNECT and CONNECTED frames are never escaped, for
compatibility with 1.0 peers.

"""

from __future__ import annotations

import re

from .errors import LocalProtocolError, MalformedFrame
from .frames import Command

__all__ = ["check_unescaped", "encodable", "escape", "escapes_headers", "unescape"]

_ESCAPES = {
    "1.1": {"\\": "\\\\", "\n": "\\n", ":": "\\c"},
    "1.2": {"\\": "\\\\", "\r": "\\r", "\n": "\\n", ":": "\\c"},
}
_UNESCAPES = {
    version: {escaped: raw for raw, escaped in table.items()} for version, table in _ESCAPES.items()
}
_ESCAPE_PATTERNS = {
    version: re.compile("[" + re.escape("".join(table)) + "]")
    for version, table in _ESCAPES.items()
}
_ESCAPE_SEQUENCE = re.compile(r"\\.?", re.DOTALL)
_UNESCAPED_COMMANDS = frozenset({Command.CONNECT, Command.CONNECTED})


def escapes_headers(command: Command, version: str) -> bool:
    """Tell whether headers of ``command`` are escaped in ``version``."""
    return version != "1.0" and command not in _UNESCAPED_COMMANDS


def escape(text: str, version: str) -> str:
    """
    Escape a header name or value for ``version`` (1.1 or 1.2).

    Raises:
        LocalProtocolError: A NUL, which no STOMP version can escape and
            every peer reads as the end of the frame (the rest would be read
            as a frame of its own); or a carriage return in STOMP 1.1, which
            has no escape for it and would read it back as part of the EOL.

    """
    if "\0" in text:
        raise LocalProtocolError(f"header {text!r} holds a NUL, which no STOMP frame can carry")
    if version == "1.1" and "\r" in text:
        raise LocalProtocolError(f"header {text!r} holds a CR, which STOMP 1.1 cannot carry")
    table = _ESCAPES[version]
    return _ESCAPE_PATTERNS[version].sub(lambda match: table[match[0]], text)


def unescape(text: str, version: str) -> str:
    """
    Undo :func:`escape`.

    Raises:
        MalformedFrame: On an undefined escape sequence, which STOMP 1.2
            §Value Encoding says "MUST be treated as a fatal protocol error".

    """
    if "\\" not in text:
        return text
    table = _UNESCAPES[version]

    def replace(match: re.Match[str]) -> str:
        try:
            return table[match[0]]
        except KeyError:
            raise MalformedFrame(
                "invalid header escape",
                details=f"undefined escape sequence {match[0]!r} in STOMP {version}",
            ) from None

    return _ESCAPE_SEQUENCE.sub(replace, text)


def check_unescaped(text: str, *, name: bool = False) -> str:
    """
    Refuse a header name or value that cannot be sent without escaping.

    STOMP 1.0 (and CONNECT, CONNECTED in every version) has no escapes: a
    header holding CR, LF or NUL (or a name holding a colon) cannot be
    represented, so it is refused, never stripped: a changed header would
    be a different message.

    Raises:
        LocalProtocolError: ``text`` holds such a character.

    """
    forbidden = "\n\r\0:" if name else "\n\r\0"
    if any(char in text for char in forbidden):
        raise LocalProtocolError(f"header {text!r} needs escaping, which is off here")
    return text


def encodable(text: str, command: Command, version: str) -> bool:
    """Tell whether ``text`` can be sent as a header value of ``command``."""
    try:
        if escapes_headers(command, version):
            escape(text, version).encode()
        else:
            check_unescaped(text).encode()
    except (LocalProtocolError, UnicodeEncodeError):
        return False
    return True
