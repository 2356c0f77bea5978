"""Raw and SockJS framing of STOMP bytes in WebSocket messages."""

from __future__ import annotations

import json

import pytest

from gateway.transport.framing import COALESCE_BYTES, FramingError, Kind, RawFraming, SockJSFraming


def test_raw_framing_passes_frames_through() -> None:
    framing = RawFraming()
    assert framing.opening() == []
    assert framing.decode("SEND\n\n\0") == [b"SEND\n\n\0"]
    assert framing.decode(b"\x00\xff") == [b"\x00\xff"]
    batch = [(b"A\n\n\0", Kind.TEXT), (b"\xff", Kind.BINARY), (b"", Kind.HEARTBEAT)]
    assert framing.encode(batch) == [(b"A\n\n\0", True), (b"\xff", False)]
    assert framing.closing(1000, "bye") == []


def test_raw_framing_joins_text_frames_ready_together() -> None:
    framing = RawFraming()
    a, b, c = b"A\n\n\0", b"B\n\n\0", b"C\n\n\0"
    batch = [(a, Kind.TEXT), (b, Kind.TEXT), (b"\n", Kind.TEXT), (c, Kind.TEXT)]
    # The STOMP heart-beat (a lone EOL) travels alone, between the joined frames.
    assert framing.encode(batch) == [(a + b, True), (b"\n", True), (c, True)]
    binary = [(a, Kind.TEXT), (b"\xff\0", Kind.BINARY), (b, Kind.TEXT)]
    assert framing.encode(binary) == [(a, True), (b"\xff\0", False), (b, True)]


def test_raw_framing_caps_a_joined_message() -> None:
    framing = RawFraming()
    frame = b"M" * (COALESCE_BYTES // 2 - 1) + b"\0"  # two fill a message exactly
    messages = framing.encode([(frame, Kind.TEXT)] * 3)
    assert messages == [(frame + frame, True), (frame, True)]


def test_sockjs_opens_batches_and_closes() -> None:
    framing = SockJSFraming()
    assert framing.opening() == ["o"]
    batch = [(b"A\n\n\0", Kind.TEXT), ("B\n\n안녕\0".encode(), Kind.TEXT)]
    [(message, text)] = framing.encode(batch)
    assert text
    assert isinstance(message, str)
    assert message.startswith("a[")
    assert json.loads(message[1:]) == ["A\n\n\0", "B\n\n안녕\0"]
    assert framing.closing(1002, 'bad "frame"') == ['c[1002,"bad \\"frame\\""]']


def test_sockjs_heartbeat_splits_the_array_and_keeps_order() -> None:
    framing = SockJSFraming()
    batch = [(b"A", Kind.TEXT), (b"", Kind.HEARTBEAT), (b"B", Kind.TEXT)]
    assert framing.encode(batch) == [('a["A"]', True), ("h", True), ('a["B"]', True)]


def test_sockjs_drops_binary_frames_it_cannot_carry(caplog: pytest.LogCaptureFixture) -> None:
    assert SockJSFraming().encode([(b"\xff\0", Kind.BINARY)]) == []
    assert "not UTF-8" in caplog.text


@pytest.mark.parametrize(
    ("message", "decoded"),
    [
        ('["CONNECT\\n\\n\\u0000"]', [b"CONNECT\n\n\0"]),
        ('["a","b"]', [b"a", b"b"]),
        ('"single"', [b"single"]),
        ("", []),
        (b'["\xc3\xa9"]', ["é".encode()]),
    ],
)
def test_sockjs_decodes_arrays_and_strings(message: str | bytes, decoded: list[bytes]) -> None:
    assert SockJSFraming().decode(message) == decoded


@pytest.mark.parametrize("message", ["not json", "[1]", "{}", "null", b"\xff", '["a", null]'])
def test_sockjs_refuses_other_messages(message: str | bytes) -> None:
    with pytest.raises(FramingError, match="invalid SockJS message"):
        SockJSFraming().decode(message)
