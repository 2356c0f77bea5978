"""Unit tests for :class:`persistence.ChatMessage`: the seed's JSON shape, both ways."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persistence import ChatMessage, InvalidMessage, id_and_room

SAMPLE = ChatMessage(
    id="6727a1f0c3b5a24e1d9f0a11",
    chat_room_id=4,
    member_id=7,
    nickname="henhen",
    message="안녕하세요",
    create_at="2024-11-03T18:23:45.123456789",
)


def fields(**changes: Any) -> dict[str, Any]:
    value = SAMPLE.to_dict()
    value.update(changes)
    return value


def test_to_dict_in_the_seed_order() -> None:
    assert list(SAMPLE.to_dict().items()) == [
        ("id", "6727a1f0c3b5a24e1d9f0a11"),
        ("chatRoomId", 4),
        ("memberId", 7),
        ("nickname", "henhen"),
        ("message", "안녕하세요"),
        ("fileId", None),
        ("fileName", None),
        ("createAt", "2024-11-03T18:23:45.123456789"),
    ]


def test_to_json_is_compact_utf8() -> None:
    assert (
        SAMPLE.to_json()
        == (
            '{"id":"6727a1f0c3b5a24e1d9f0a11","chatRoomId":4,"memberId":7,"nickname":"henhen",'
            '"message":"안녕하세요","fileId":null,"fileName":null,'
            '"createAt":"2024-11-03T18:23:45.123456789"}'
        ).encode()
    )


def test_round_trip() -> None:
    assert ChatMessage.from_json(SAMPLE.to_json()) == SAMPLE


def test_file_message_round_trip() -> None:
    for file_id in (12, "f-12"):
        message = ChatMessage(
            id="0" * 24,
            chat_room_id=1,
            member_id=2,
            nickname="n",
            file_id=file_id,
            file_name="사진.png",
            create_at="2024-01-01T00:00:00",
        )
        assert ChatMessage.from_json(message.to_json()) == message
        assert json.loads(message.to_json())["message"] is None


@pytest.mark.parametrize(
    "data",
    [
        # Another producer's spacing, key order and escapes.
        json.dumps(fields(), ensure_ascii=True, indent=2).encode(),
        json.dumps(dict(reversed(list(fields().items())))).encode(),
        # Optional fields may be missing.
        json.dumps({k: v for k, v in fields().items() if k not in ("fileId", "fileName")}).encode(),
    ],
)
def test_from_json_tolerates_other_producers(data: bytes) -> None:
    assert ChatMessage.from_json(data) == SAMPLE


def test_from_json_ignores_unknown_fields() -> None:
    assert ChatMessage.from_json(json.dumps(fields(extra=[1, 2])).encode()) == SAMPLE


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"\xff\xfe",
        b"[]",
        b"null",
        b'"text"',
        json.dumps({k: v for k, v in fields().items() if k != "id"}).encode(),
        json.dumps({k: v for k, v in fields().items() if k != "chatRoomId"}).encode(),
        json.dumps({k: v for k, v in fields().items() if k != "memberId"}).encode(),
        json.dumps({k: v for k, v in fields().items() if k != "nickname"}).encode(),
        json.dumps({k: v for k, v in fields().items() if k != "createAt"}).encode(),
        json.dumps(fields(id=5)).encode(),
        json.dumps(fields(id=None)).encode(),
        json.dumps(fields(chatRoomId="4")).encode(),
        json.dumps(fields(chatRoomId=4.0)).encode(),
        json.dumps(fields(chatRoomId=True)).encode(),
        json.dumps(fields(memberId=False)).encode(),
        json.dumps(fields(nickname=1)).encode(),
        json.dumps(fields(message=1)).encode(),
        json.dumps(fields(message=["x"])).encode(),
        json.dumps(fields(fileId=1.5)).encode(),
        json.dumps(fields(fileId=True)).encode(),
        json.dumps(fields(fileName=3)).encode(),
        json.dumps(fields(memberId=2**63)).encode(),  # beyond BSON's int64
        json.dumps(fields(fileId=-(2**63) - 1)).encode(),
        json.dumps(fields(createAt=0)).encode(),
    ],
)
def test_from_json_refuses(data: bytes) -> None:
    with pytest.raises(InvalidMessage):
        ChatMessage.from_json(data)


def test_invalid_message_is_a_value_error() -> None:
    assert issubclass(InvalidMessage, ValueError)


def test_messages_are_frozen() -> None:
    with pytest.raises(AttributeError):
        SAMPLE.message = "changed"  # type: ignore[misc]


_text = st.text(st.characters(exclude_categories=["Cs"]))
_long = st.integers(-(2**63), 2**63 - 1)


@given(
    st.builds(
        ChatMessage,
        id=st.from_regex(r"[0-9a-f]{24}", fullmatch=True),
        chat_room_id=st.integers(1, 2**63 - 1),
        member_id=_long,
        nickname=_text,
        message=st.none() | _text,
        file_id=st.none() | _long | _text,
        file_name=st.none() | _text,
        create_at=_text,
    )
)
def test_round_trip_property(message: ChatMessage) -> None:
    data = message.to_json()
    assert ChatMessage.from_json(data) == message
    assert json.loads(data) == message.to_dict()
    assert ChatMessage.from_row(message.row()) == message
    assert id_and_room(data) == (message.id, message.chat_room_id)
    # orjson writes exactly what the standard library wrote before it.
    assert data == json.dumps(message.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()


def test_to_json_refuses_a_lone_surrogate() -> None:
    with pytest.raises(InvalidMessage, match="cannot be encoded"):
        dataclasses.replace(SAMPLE, message="\ud800").to_json()


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf" + SAMPLE.to_json(),  # a byte order mark (RFC 8259 section 8.1: MAY ignore)
        SAMPLE.to_json().replace(b'"fileId":null', b'"fileId":null,"x":NaN'),
    ],
)
def test_from_json_reads_what_the_standard_library_reads(data: bytes) -> None:
    assert ChatMessage.from_json(data) == SAMPLE


@pytest.mark.parametrize(
    "data",
    [
        json.dumps(fields()).encode(),  # spaces
        json.dumps(dict(reversed(list(fields().items())))).encode(),
        SAMPLE.to_json().replace(
            b'"id":"6727a1f0c3b5a24e1d9f0a11"', b'"id":"6727A1F0C3B5A24E1D9F0A11"'
        ),
        SAMPLE.to_json().replace(b'"chatRoomId":4', b'"chatRoomId":4.0'),
        SAMPLE.to_json().replace(b'"chatRoomId":4', b'"chatRoomId":"4"'),
    ],
)
def test_id_and_room_only_in_our_own_shape(data: bytes) -> None:
    assert id_and_room(data) is None


def test_row_keeps_the_bus_position() -> None:
    placed = ChatMessage.from_json(SAMPLE.to_json(), partition=2, offset=17)
    assert ChatMessage.from_row(placed.row()) == placed
