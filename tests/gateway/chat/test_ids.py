"""Unit tests for :mod:`gateway.chat.ids`: room and member ids, ObjectIds, createAt."""

from __future__ import annotations

import datetime
import itertools
import re
import time
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.chat.ids import (
    MAX_ROOM_ID,
    OBJECT_ID,
    InvalidId,
    local_date_time,
    long_id,
    new_object_id,
    parse_room_id,
)

UTC = zoneinfo.ZoneInfo("UTC")
SEOUL = zoneinfo.ZoneInfo("Asia/Seoul")
SECOND = 1_000_000_000


# parse_room_id


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("42", 42), (str(MAX_ROOM_ID), MAX_ROOM_ID)])
def test_parse_room_id(text: str, value: int) -> None:
    assert parse_room_id(text) == value


def test_max_room_id_is_a_java_long() -> None:
    assert MAX_ROOM_ID == 9_223_372_036_854_775_807


@given(st.integers(1, MAX_ROOM_ID))
def test_parse_room_id_round_trip(room_id: int) -> None:
    assert parse_room_id(str(room_id)) == room_id


@given(st.text(max_size=30))
def test_parse_room_id_refuses_or_returns_a_valid_room(text: str) -> None:
    valid = text.isascii() and text.isdigit() and not text.startswith("0")
    if valid and int(text) <= MAX_ROOM_ID:
        assert parse_room_id(text) == int(text)
    else:
        with pytest.raises(InvalidId, match="invalid room id"):
            parse_room_id(text)


# long_id: member ids (a message body, a token claim, a query), a token's rooms


@given(st.integers(-(2**63), MAX_ROOM_ID))
def test_long_id_takes_a_java_long(value: int) -> None:
    assert long_id(value) == value
    if value >= 0:
        assert long_id(str(value)) == value
        assert long_id("000" + str(value)) == value


@pytest.mark.parametrize(
    "value",
    [
        2**63,
        -(2**63) - 1,
        str(2**63),
        "9" * 5000,
        "-1",
        "+1",
        " 1",
        "1.0",
        "١",
        "",
        1.0,
        True,
        None,
        [1],
    ],
)
def test_long_id_refuses_anything_else(value: object) -> None:
    assert long_id(value) is None


@given(st.text(max_size=30))
def test_long_id_of_text_is_its_decimal_value_or_none(text: str) -> None:
    valid = text.isascii() and text.isdigit() and int(text) <= MAX_ROOM_ID
    assert long_id(text) == (int(text) if valid else None)


# local_date_time


@pytest.mark.parametrize(
    ("epoch_ns", "zone", "expected"),
    [
        (0, UTC, "1970-01-01T00:00:00"),
        (0, SEOUL, "1970-01-01T09:00:00"),
        (500_000_000, UTC, "1970-01-01T00:00:00.5"),
        (120_000_000, UTC, "1970-01-01T00:00:00.12"),
        (123_456_789, UTC, "1970-01-01T00:00:00.123456789"),
        (1_000, UTC, "1970-01-01T00:00:00.000001"),
        (1, UTC, "1970-01-01T00:00:00.000000001"),
        (999_999_999, UTC, "1970-01-01T00:00:00.999999999"),
        (1_700_000_000 * SECOND, UTC, "2023-11-14T22:13:20"),
        (1_700_000_000 * SECOND + 123_400_000, UTC, "2023-11-14T22:13:20.1234"),
        (1_700_000_000 * SECOND + 123_400_000, SEOUL, "2023-11-15T07:13:20.1234"),
        (1_730_658_225 * SECOND + 123_456_789, SEOUL, "2024-11-04T03:23:45.123456789"),
        (-1, UTC, "1969-12-31T23:59:59.999999999"),
        # Seconds are always printed, even when zero.
        (1_700_000_040 * SECOND, UTC, "2023-11-14T22:14:00"),
    ],
)
def test_local_date_time(epoch_ns: int, zone: zoneinfo.ZoneInfo, expected: str) -> None:
    assert local_date_time(epoch_ns, zone) == expected


def test_local_date_time_follows_daylight_saving() -> None:
    new_york = zoneinfo.ZoneInfo("America/New_York")
    winter = 1_704_067_200 * SECOND  # 2024-01-01T00:00:00Z
    summer = 1_719_792_000 * SECOND  # 2024-07-01T00:00:00Z
    assert local_date_time(winter, new_york) == "2023-12-31T19:00:00"
    assert local_date_time(summer, new_york) == "2024-06-30T20:00:00"


_LOCAL = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?")


@given(st.integers(0, 4_102_444_800 * SECOND))  # up to 2100
def test_local_date_time_is_exact(epoch_ns: int) -> None:
    text = local_date_time(epoch_ns, SEOUL)
    match = _LOCAL.fullmatch(text)
    assert match is not None, text
    seconds, nanos = divmod(epoch_ns, SECOND)
    fraction = match[2] or ""
    assert not fraction.endswith("0")
    assert int(fraction.ljust(9, "0")) == nanos
    moment = datetime.datetime.fromisoformat(match[1]).replace(tzinfo=SEOUL)
    assert moment.timestamp() == seconds


# new_object_id


def test_object_id_shape() -> None:
    object_id = new_object_id(1_700_000_000.9)
    assert OBJECT_ID.fullmatch(object_id)
    assert object_id[:8] == f"{1_700_000_000:08x}"


def test_object_id_uses_the_clock() -> None:
    before = int(time.time())
    seconds = int(new_object_id()[:8], 16)
    assert before <= seconds <= int(time.time())


def test_object_ids_share_the_process_part_and_count() -> None:
    ids = [new_object_id(1_700_000_000) for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert {object_id[8:18] for object_id in ids} == {ids[0][8:18]}
    counters = [int(object_id[18:], 16) for object_id in ids]
    for earlier, later in itertools.pairwise(counters):
        assert later == (earlier + 1) % 2**24


def test_object_ids_increase() -> None:
    ids = [new_object_id(now) for now in (1_700_000_000, 1_700_000_001, 1_800_000_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3


def test_object_id_time_wraps_at_32_bits() -> None:
    assert new_object_id(2**32 + 5)[:8] == "00000005"
