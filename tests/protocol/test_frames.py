from __future__ import annotations

# Tests for :mod:`protocol.frames`.
import dataclasses

import pytest

from protocol.frames import CLIENT_COMMANDS, SERVER_COMMANDS, Command, Frame, HeartBeat


def test_frame_defaults() -> None:
    frame = Frame(Command.DISCONNECT)
    assert frame.headers == ()
    assert frame.body == b""


def test_frame_is_immutable_and_hashable() -> None:
    frame = Frame(Command.SEND, (("destination", "/queue/a"),), b"x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.body = b"y"  # type: ignore[misc]
    assert hash(frame) == hash(Frame(Command.SEND, (("destination", "/queue/a"),), b"x"))


@pytest.mark.parametrize(
    ("headers", "name", "expected"),
    [
        # STOMP 1.2 §Repeated Header Entries: MESSAGE foo:World, foo:Hello -> World.
        ((("foo", "World"), ("foo", "Hello")), "foo", "World"),
        ((("a", "1"), ("b", "2"), ("a", "3")), "b", "2"),
        ((("a", ""), ("a", "x")), "a", ""),
        ((("a", "1"),), "A", None),
        ((), "a", None),
    ],
)
def test_get_returns_first_occurrence(
    headers: tuple[tuple[str, str], ...], name: str, expected: str | None
) -> None:
    assert Frame(Command.MESSAGE, headers).get(name) == expected


def test_get_default() -> None:
    frame = Frame(Command.SUBSCRIBE, (("destination", "/q"),))
    assert frame.get("ack", "auto") == "auto"
    assert frame.get("destination", "other") == "/q"


def test_contains() -> None:
    frame = Frame(Command.SEND, (("destination", "/q"), ("receipt", "")))
    assert "destination" in frame
    assert "receipt" in frame
    assert "transaction" not in frame
    assert 42 not in frame


def test_without_removes_every_occurrence_and_keeps_order() -> None:
    frame = Frame(
        Command.MESSAGE,
        (("a", "1"), ("b", "2"), ("a", "3"), ("c", "4"), ("d", "5")),
        b"body",
    )
    stripped = frame.without("a", "d")
    assert stripped == Frame(Command.MESSAGE, (("b", "2"), ("c", "4")), b"body")
    assert frame.without() == frame
    assert frame.without("zzz") == frame


def test_heart_beats_are_equal() -> None:
    assert HeartBeat() == HeartBeat()
    other: object = Frame(Command.SEND)
    assert HeartBeat() != other


def test_command_values_are_wire_names() -> None:
    for command in Command:
        assert command.value == command.name
    assert len(Command) == 15


def test_client_and_server_commands_partition_commands() -> None:
    assert frozenset({Command.CONNECTED, Command.MESSAGE, Command.RECEIPT, Command.ERROR}) == (
        SERVER_COMMANDS
    )
    assert frozenset(Command) == CLIENT_COMMANDS | SERVER_COMMANDS
    assert not CLIENT_COMMANDS & SERVER_COMMANDS
    assert Command.STOMP in CLIENT_COMMANDS
    assert Command.NACK in CLIENT_COMMANDS
