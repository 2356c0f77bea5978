"""The chat message, in the JSON shape the seed's clients read."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import re
from typing import Any

import orjson

from .bounded_json import InvalidJson, load_json

__all__ = [
    "ChatMessage",
    "ChatRow",
    "InvalidMessage",
    "id_and_room",
    "is_long",
    "load_object",
    "local_date_time",
]

# A ChatMessage's fields in order, as a tuple of atoms: what long-lived buffers keep.
# CPython's collector stops tracking a tuple holding only atoms (str, int, None),
# so a million kept rows add nothing to a collection's work, where a million
# ChatMessage objects would be traversed by every full collection.
ChatRow = tuple[
    str, int, int, str, str | None, int | str | None, str | None, str, int | None, int | None
]


class InvalidMessage(ValueError):
    """Bytes that are not a chat message in the seed's JSON shape."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessage:
    """
    One chat message.

    Attributes:
        id: A MongoDB ObjectId in hex.
        chat_room_id: The room.
        member_id: The sender.
        nickname: The sender's display name.
        message: The text, or None for a file message.
        file_id: The file's id, for a file message.
        file_name: The file's name, for a file message.
        create_at: Local date-time string without offset, as the seed prints it.
        partition: The bus partition the message was read from, once known.
        offset: Its offset there: the message's place in its room's order.
            Neither is part of the JSON clients see.

    """

    id: str
    chat_room_id: int
    member_id: int
    nickname: str
    message: str | None = None
    file_id: int | str | None = None
    file_name: str | None = None
    create_at: str
    partition: int | None = None
    offset: int | None = None

    def row(self) -> ChatRow:
        """Return the fields as a :data:`ChatRow`, in declaration order."""
        return (
            self.id,
            self.chat_room_id,
            self.member_id,
            self.nickname,
            self.message,
            self.file_id,
            self.file_name,
            self.create_at,
            self.partition,
            self.offset,
        )

    @classmethod
    def from_row(cls, row: ChatRow) -> ChatMessage:
        """Return the message :meth:`row` returned ``row`` for."""
        (
            id,
            chat_room_id,
            member_id,
            nickname,
            message,
            file_id,
            file_name,
            create_at,
            partition,
            offset,
        ) = row
        return cls(
            id=id,
            chat_room_id=chat_room_id,
            member_id=member_id,
            nickname=nickname,
            message=message,
            file_id=file_id,
            file_name=file_name,
            create_at=create_at,
            partition=partition,
            offset=offset,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the seed's JSON object, fields in the seed's order."""
        return {
            "id": self.id,
            "chatRoomId": self.chat_room_id,
            "memberId": self.member_id,
            "nickname": self.nickname,
            "message": self.message,
            "fileId": self.file_id,
            "fileName": self.file_name,
            "createAt": self.create_at,
        }

    def to_json(self) -> bytes:
        """
        Return the compact UTF-8 JSON of :meth:`to_dict`: the bytes of
        ``json.dumps(..., ensure_ascii=False, separators=(",", ":")).encode()``,
        in a twentieth of the time (orjson).

        Raises:
            InvalidMessage: A text holds a lone surrogate, which UTF-8 cannot carry.

        """
        try:
            return orjson.dumps(self.to_dict())
        except orjson.JSONEncodeError as exc:
            raise InvalidMessage(f"cannot be encoded: {exc}") from None

    @classmethod
    def from_json(
        cls, data: bytes, *, partition: int | None = None, offset: int | None = None
    ) -> ChatMessage:
        """
        Read a message written by :meth:`to_json` (or by another producer),
        read from the bus at ``partition`` and ``offset`` if given (built with
        them: a ``dataclasses.replace`` afterwards costs half a decode).

        Raises:
            InvalidMessage: ``data`` is not such a message.

        """
        obj = load_object(data, utf8_only=True)
        try:
            return cls(
                id=_object_id(obj),
                chat_room_id=_typed(obj, "chatRoomId", int),
                member_id=_typed(obj, "memberId", int),
                nickname=_typed(obj, "nickname", str),
                message=_optional(obj, "message", str),
                file_id=_optional(obj, "fileId", (int, str)),
                file_name=_optional(obj, "fileName", str),
                create_at=_typed(obj, "createAt", str),
                partition=partition,
                offset=offset,
            )
        except (KeyError, TypeError) as exc:
            raise InvalidMessage(str(exc)) from None


_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
# How :meth:`ChatMessage.to_json` (and the seed's Jackson) begins a message.
_HEAD = re.compile(rb'\{"id":"([0-9a-f]{24})","chatRoomId":([0-9]{1,19}),"memberId":-?[0-9]')


def id_and_room(data: bytes) -> tuple[str, int] | None:
    """
    Return the id and room of a message written in :meth:`ChatMessage.to_json`'s
    shape, read from its first bytes without parsing the rest (a tenth of a
    parse); None for any other shape, which must be parsed.
    """
    match = _HEAD.match(data)
    return None if match is None else (match[1].decode(), int(match[2]))


def load_object(data: bytes, *, utf8_only: bool = False) -> dict[str, Any]:
    """
    Parse ``data`` as a JSON object, within :mod:`.bounded_json`'s bounds
    (``utf8_only``: see :func:`.load_json`). Integers beyond 64 bits become floats.

    Raises:
        InvalidMessage: ``data`` is not UTF-8 JSON, or not an object.

    """
    try:
        obj = load_json(data, utf8_only=utf8_only)
    except InvalidJson as exc:
        raise InvalidMessage(str(exc)) from None
    if not isinstance(obj, dict):
        raise InvalidMessage("not a JSON object")
    return obj


def local_date_time(epoch_ns: int, zone: datetime.tzinfo) -> str:
    """
    Format an instant as the seed's ``createAt``: a local date-time without
    offset, seconds always shown, the fraction in its shortest exact form
    (Java's ``DateTimeFormatter.ISO_LOCAL_DATE_TIME``).
    """
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    text = _local_second(seconds, zone)
    return f"{text}.{nanos:09d}".rstrip("0") if nanos else text


@functools.lru_cache(maxsize=4)
def _local_second(seconds: int, zone: datetime.tzinfo) -> str:
    """The formatted second, computed once for all the messages of that second."""
    return datetime.datetime.fromtimestamp(seconds, zone).strftime("%Y-%m-%dT%H:%M:%S")


def is_long(value: int) -> bool:
    """Whether ``value`` fits a signed 64-bit integer: the seed's Java long, BSON's int64."""
    return -(2**63) <= value < 2**63


def _typed(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{key} has the wrong type")
    if isinstance(value, int) and not is_long(value):
        raise TypeError(f"{key} does not fit 64 bits")
    return value


def _object_id(obj: dict[str, Any]) -> str:
    # The store keys messages by ObjectId, and MESSAGE frames carry the id as a header.
    value: str = _typed(obj, "id", str)
    if not _OBJECT_ID.fullmatch(value):
        raise TypeError("id is not an ObjectId in hex")
    return value


def _optional(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    return None if obj.get(key) is None else _typed(obj, key, kind)
