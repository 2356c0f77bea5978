"""JSON read within bounds: what the parsers read, and one documented error for the rest."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persistence import InvalidJson, load_json
from persistence.bounded_json import MAX_DEPTH

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _nested(depth: int, leaf: str = "1") -> bytes:
    return ("[" * depth + leaf + "]" * depth).encode()


def _same(read: Any, expected: Any) -> bool:
    """Equal, but an integer orjson cannot hold (past -2**63 .. 2**64 - 1) is a float."""
    if isinstance(expected, int) and not -(2**63) <= expected < 2**64:
        return isinstance(read, float) and read == float(expected)
    if isinstance(expected, list):
        return len(read) == len(expected) and all(map(_same, read, expected))
    if isinstance(expected, dict):
        keys = read.keys() == expected.keys()
        return keys and all(_same(read[key], value) for key, value in expected.items())
    return bool(read == expected)


@given(_json_values, st.booleans())
def test_reads_what_json_writes(value: Any, ascii_only: bool) -> None:
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert _same(load_json(data), value)


@given(_json_values)
def test_reads_it_beside_nan_too(value: Any) -> None:
    """NaN sends the bytes past orjson to the standard library's parser."""
    read = load_json(json.dumps([value, math.nan]).encode())
    assert _same(read[0], value)
    assert math.isnan(read[1])


@given(st.integers(1, MAX_DEPTH), st.sampled_from(["1", "NaN"]))
def test_reads_nesting_up_to_the_bound(depth: int, leaf: str) -> None:
    value = load_json(_nested(depth, leaf))
    for _ in range(depth):
        (value,) = value


@given(st.integers(MAX_DEPTH + 1, 20_000), st.sampled_from(["1", "NaN"]))
def test_refuses_deeper_nesting(depth: int, leaf: str) -> None:
    with pytest.raises(InvalidJson, match=f"nested deeper than {MAX_DEPTH} levels"):
        load_json(_nested(depth, leaf))


@pytest.mark.parametrize("nan", [False, True])
def test_brackets_inside_strings_are_not_nesting(nan: bool) -> None:
    text = "[{" * 5_000 + '\\"'
    assert load_json(json.dumps(text).encode()) == text
    assert load_json(json.dumps([text, math.nan] if nan else [text]).encode())[0] == text


@pytest.mark.parametrize("digits", [4_301, 20_000])
@pytest.mark.parametrize("sign", ["", "-"])
def test_integers_past_the_digit_limit_become_floats(digits: int, sign: str) -> None:
    number = sign + "9" * digits
    assert load_json(f"[{number}, NaN]".encode())[0] == float(number)
    assert load_json(f"[{number}]".encode()) == [float(number)]


_JSONISH = st.text(st.sampled_from('[]{}"\\:,0123456789-eE.N')).map(str.encode)


_BRACKETS = st.text(st.sampled_from('[]{}"\\ 1'), min_size=MAX_DEPTH, max_size=3 * MAX_DEPTH)


@given(st.binary(max_size=200) | _JSONISH | _BRACKETS.map(str.encode))
def test_any_bytes_parse_or_raise_invalid_json(data: bytes) -> None:
    with contextlib.suppress(InvalidJson):
        load_json(data)


def test_utf8_only_refuses_a_lone_surrogate() -> None:
    assert load_json(b'["\\ud800"]') == ["\ud800"]
    with pytest.raises(InvalidJson, match="surrogates not allowed"):
        load_json(b'["\\ud800"]', utf8_only=True)
    assert load_json(b'["\\ud83d\\ude00"]', utf8_only=True) == ["\U0001f600"]
