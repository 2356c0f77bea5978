"""
JSON from clients and other producers, read within bounds.

Arrays and objects nested deeper than :data:`MAX_DEPTH` are refused before
any parsing. orjson reads the rest when it is RFC 8259 JSON, integers past
-2**63 .. 2**64 - 1 as floats; what it refuses (a byte order mark, NaN, a lone surrogate)
goes to the standard library, which reads long integers as floats too: its
``int()`` raises ``ValueError`` beyond 4,300 digits, and its parser
``RecursionError`` about a thousand levels deep.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import orjson

__all__ = ["MAX_DEPTH", "InvalidJson", "load_json"]

MAX_DEPTH = 512  # levels of arrays and objects; orjson's own bound is 1,024
_LONG_DIGITS = len(str(-(2**63)))  # no integer orjson reads exactly is longer
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class InvalidJson(ValueError):
    """Bytes that are not JSON this module reads; the message says why."""


def load_json(data: bytes, *, utf8_only: bool = False) -> Any:
    """
    Parse ``data`` as JSON; with ``utf8_only``, refuse a lone surrogate in a
    string (``"\\ud800"``), which neither UTF-8 nor BSON can carry.

    Raises:
        InvalidJson: ``data`` is not UTF-8 JSON, or nests deeper than :data:`MAX_DEPTH`.

    """
    if _too_deep(data):
        raise InvalidJson(f"not valid JSON: nested deeper than {MAX_DEPTH} levels")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        value = json.loads(data, parse_int=_integer)
        if utf8_only:
            orjson.dumps(value)  # refuses what orjson.loads would have refused in a string
    except (UnicodeDecodeError, json.JSONDecodeError, orjson.JSONEncodeError) as exc:
        raise InvalidJson(f"not valid JSON: {exc}") from None
    return value


def _too_deep(data: bytes) -> bool:
    """Whether ``data``'s arrays and objects nest deeper than MAX_DEPTH (exact for valid JSON)."""
    if len(data) <= MAX_DEPTH or data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return False  # a scan could not find more levels than there are brackets
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(_STEP[byte] for byte in brackets), default=0) > MAX_DEPTH


def _integer(text: str) -> int | float:
    """An integer as orjson reads it: exact from -2**63 to 2**64 - 1, else a float."""
    if len(text) <= _LONG_DIGITS and -(2**63) <= (value := int(text)) < 2**64:
        return value
    return float(text)
