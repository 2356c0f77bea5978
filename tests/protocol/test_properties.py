from __future__ import annotations

# Property-based tests (hypothesis) for the parser, serializer and session.
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import LimitExceeded, LocalProtocolError, MalformedFrame, ProtocolError
from protocol.escaping import escape, escapes_headers, unescape
from protocol.frames import Command, Frame, Headers, HeartBeat
from protocol.parser import Limits, Parser
from protocol.serializer import MessageTemplate, message_head, serialize
from protocol.session import ServerSession, State

from ._helpers import HB, Event, split_at

PROPERTY = settings(max_examples=300, deadline=None, database=None)

VERSIONS = ("1.0", "1.1", "1.2")
LIMITS = (
    Limits(),
    Limits(max_frame_size=256, max_headers=6, max_header_line=64),
    Limits(max_frame_size=40, max_headers=2, max_header_line=16),
)

# Pieces of valid-looking frames, so that the search reaches past the command line.
FRAGMENTS = [
    *(command.value.encode() + b"\n" for command in Command),
    *(command.value.encode() for command in (Command.SEND, Command.CONNECT, Command.ACK)),
    b"\n",
    b"\r\n",
    b"\r",
    b"\x00",
    b"\x00\n",
    b"\n\n",
    b":",
    b"\\",
    b"\\c",
    b"\\n",
    b"\\r",
    b"\\t",
    b"\\\\",
    b"content-length:",
    b"content-length:0\n",
    b"content-length:1\n",
    b"content-length:3\n",
    b"content-length:-1\n",
    b"content-length:99999\n",
    b"destination:/q\n",
    b"receipt:r\n",
    b"id:1\n",
    b"transaction:t\n",
    b"accept-version:1.2\n",
    b"accept-version:1.0,1.1\n",
    b"accept-version:9\n",
    b"heart-beat:0,1000\n",
    b"heart-beat:",
    b"ack:client\n",
    b"message-id:m\n",
    b"subscription:s\n",
    b"body",
    b"0",
    b"12",
    b",",
    b"\xff",
    b"\xc3\xa9",
    b"\xe2\x82",
]
CONNECTS = [
    b"",
    b"CONNECT\n\n\x00",
    b"CONNECT\naccept-version:1.1\n\n\x00",
    b"STOMP\naccept-version:1.2\nheart-beat:100,100\n\n\x00",
]

# Parts of frame-shaped inputs: each frame is a command line, header lines, a blank
# line, a body and a terminator, every part drawn from valid and broken variants.
COMMAND_WORDS = [*(command.value.encode() for command in Command), b"", b"send", b"FOO"]
NAMES = [
    b"content-length",
    b"destination",
    b"receipt",
    b"heart-beat",
    b"accept-version",
    b"id",
    b"transaction",
    b"ack",
    b"message-id",
    b"subscription",
    b"",
    b"a\\cb",
    b"\xc3\xa9",
]
VALUES = [
    b"",
    b"0",
    b"1",
    b"3",
    b"-1",
    b"+1",
    b"abc",
    b"0,0",
    b"100,100",
    b"x,1",
    b"1.0",
    b"1.1",
    b"1.2",
    b"1.0,1.2",
    b"9.9",
    b"client",
    b"client-individual",
    b"auto",
    b"t",
    b"/q",
    b"\\c",
    b"\\n",
    b"\\r",
    b"\\t",
    b"\\",
    b"a:b",
    b"\xff",
]


def frame_like(noise: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    header = st.tuples(
        st.sampled_from(NAMES) | noise,
        st.sampled_from([b":", b":", b":", b"", b"::"]),
        st.sampled_from(VALUES) | noise,
    ).map(b"".join)
    return st.builds(
        lambda command, headers, eol, body, end: (
            command + eol + b"".join(header + eol for header in headers) + eol + body + end
        ),
        st.sampled_from(COMMAND_WORDS) | noise,
        st.lists(header, max_size=6),
        st.sampled_from([b"\n", b"\r\n"]),
        noise,
        st.sampled_from([b"\x00", b"\x00\n", b"\x00\r\n", b"\x00\n\n", b"", b"\n"]),
    )


def streams(noise: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    pieces = frame_like(noise) | st.sampled_from(FRAGMENTS) | noise
    return st.lists(pieces, max_size=10).map(b"".join)


binary_noise = st.binary(max_size=8)
# Non-ASCII bytes only come from fixed parts for the session, and they cannot combine
# into a non-ASCII digit (those trigger the ValueError bugs of test_negotiation.py).
ascii_noise = st.lists(st.integers(0, 127), max_size=8).map(bytes)
fragment_streams = streams(binary_noise)
session_streams = st.tuples(st.sampled_from(CONNECTS), streams(ascii_noise)).map(b"".join)


def chunked(data: st.DataObject, stream: bytes) -> list[bytes]:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts")
    return split_at(stream, cuts)


def run_parser(
    chunks: Iterable[bytes], version: str, limits: Limits
) -> tuple[list[Event], ProtocolError | None]:
    """Parse; only MalformedFrame and LimitExceeded may escape the parser."""
    parser = Parser(limits, version)
    events: list[Event] = []
    try:
        for chunk in chunks:
            for event in parser.feed(chunk):
                assert isinstance(event, Frame | HeartBeat)
                events.append(event)
    except (MalformedFrame, LimitExceeded) as exc:
        return events, exc
    return events, None


# --- (1) the parser never fails in an unexpected way -----------------------------------------


@PROPERTY
@given(
    stream=st.binary(max_size=600),
    version=st.sampled_from(VERSIONS),
    limits=st.sampled_from(LIMITS),
    data=st.data(),
)
def test_arbitrary_bytes_yield_events_or_protocol_errors(
    stream: bytes, version: str, limits: Limits, data: st.DataObject
) -> None:
    run_parser(chunked(data, stream), version, limits)


@PROPERTY
@given(
    stream=fragment_streams,
    version=st.sampled_from(VERSIONS),
    limits=st.sampled_from(LIMITS),
    data=st.data(),
)
def test_frame_fragments_yield_events_or_protocol_errors(
    stream: bytes, version: str, limits: Limits, data: st.DataObject
) -> None:
    run_parser(chunked(data, stream), version, limits)


@PROPERTY
@given(
    stream=fragment_streams,
    version=st.sampled_from(VERSIONS),
    limits=st.sampled_from(LIMITS),
    data=st.data(),
)
def test_chunking_never_changes_the_outcome(
    stream: bytes, version: str, limits: Limits, data: st.DataObject
) -> None:
    events, error = run_parser([stream], version, limits)
    split_events, split_error = run_parser(chunked(data, stream), version, limits)
    bytewise_events, bytewise_error = run_parser(
        [stream[i : i + 1] for i in range(len(stream))], version, limits
    )
    assert split_events == events
    assert bytewise_events == events
    assert type(split_error) is type(error)
    assert type(bytewise_error) is type(error)


@PROPERTY
@given(stream=session_streams, limits=st.sampled_from(LIMITS[:2]), data=st.data())
def test_session_raises_only_protocol_errors(
    stream: bytes, limits: Limits, data: st.DataObject
) -> None:
    session = ServerSession(limits, max_transaction_frames=3)
    try:
        for chunk in chunked(data, stream):
            for frame, effects in session.receive_data(chunk):
                assert isinstance(frame, Frame)
                assert all(isinstance(effect, Frame) for effect in effects)
    except ProtocolError:
        assert session.state is State.CLOSED


# --- (2) serialize -> parse round-trips ------------------------------------------------------

SPECIALS = "\n\r:\\\x00cnrt "


def alphabet(banned: str = "") -> st.SearchStrategy[str]:
    """Any character UTF-8 can encode, with the STOMP-special ones drawn often."""
    specials = [char for char in SPECIALS if char not in banned]
    return st.sampled_from(specials) | st.characters(codec="utf-8", exclude_characters=banned)


def header_text(version: str, escaped: bool, *, name: bool) -> st.SearchStrategy[str]:
    """Header names or values the serializer can represent in ``version``."""
    if not escaped:
        # Without escaping a header cannot hold an EOL (or NUL), nor a colon in its name.
        banned = "\n\r\x00:" if name else "\n\r\x00"
    elif version == "1.1":
        # 1.1 cannot escape CR, and no version NUL, so the serializer refuses them.
        banned = "\r\x00"
    else:
        banned = "\x00"
    text = st.text(alphabet(banned), min_size=1 if name else 0, max_size=20)
    if name:
        text = text.filter(lambda value: value != "content-length")
    return text


@st.composite
def frames(draw: st.DrawFn, version: str) -> Frame:
    command = draw(st.sampled_from(list(Command)))
    escaped = escapes_headers(command, version)
    headers = draw(
        st.lists(
            st.tuples(
                header_text(version, escaped, name=True),
                header_text(version, escaped, name=False),
            ),
            max_size=8,
        )
    )
    body = draw(st.binary(max_size=200))
    return Frame(command, tuple(headers), body)


def with_length(frame: Frame) -> Frame:
    length: Headers = (("content-length", str(len(frame.body))),) if frame.body else ()
    return Frame(frame.command, frame.headers + length, frame.body)


@PROPERTY
@given(data=st.data(), version=st.sampled_from(VERSIONS))
def test_serialize_parse_round_trip(data: st.DataObject, version: str) -> None:
    frame = data.draw(frames(version), label="frame")
    wire = serialize(frame, version)
    events, error = run_parser(chunked(data, wire), version, Limits())
    assert error is None
    assert events == [with_length(frame)]


def representable(frame: Frame, version: str) -> bool:
    """What the serializer promises to represent (see its docstring), told apart independently."""
    escaped = escapes_headers(frame.command, version)
    for name, value in frame.headers:
        unsafe = ("\x00\r" if version == "1.1" else "\x00") if escaped else "\x00\r\n"
        if not name or any(char in name + value for char in unsafe):
            return False
        if not escaped and ":" in name:
            return False
        if any(0xD800 <= ord(char) <= 0xDFFF for char in name + value):
            return False  # a lone surrogate: not UTF-8
    length = frame.get("content-length")
    return length is None or (
        length.isascii() and length.isdigit() and int(length) == len(frame.body)
    )


@st.composite
def any_frames(draw: st.DrawFn) -> Frame:
    """Frames of any headers at all: every STOMP-special character, lone surrogates, lengths."""
    text = st.text(alphabet() | st.characters(categories=["Cs"]), max_size=12)
    body = draw(st.binary(max_size=40))
    length = st.sampled_from([str(len(body)), "0", "1", "00" + str(len(body)), "x", ""])
    headers = st.tuples(st.just("content-length"), length) | st.tuples(text, text)
    command = draw(st.sampled_from(list(Command)))
    return Frame(command, tuple(draw(st.lists(headers, max_size=5))), body)


@PROPERTY
@given(data=st.data(), version=st.sampled_from(VERSIONS))
def test_any_frame_is_emitted_exactly_or_refused(data: st.DataObject, version: str) -> None:
    # Whatever a frame holds (a relayed header, a record of another producer),
    # the peer reads exactly that frame, or the serializer refuses it: a
    # header with NUL, CR or LF never lets a peer read a frame of its own.
    frame = data.draw(any_frames(), label="frame")
    try:
        wire = serialize(frame, version)
    except LocalProtocolError:
        assert not representable(frame, version)
        return
    assert representable(frame, version)
    events, error = run_parser(chunked(data, wire), version, Limits(max_frame_size=2**20))
    assert error is None
    assert events == [with_length(frame) if "content-length" not in frame else frame]


@settings(PROPERTY, max_examples=100)
@given(data=st.data(), version=st.sampled_from(("1.1", "1.2")))
def test_stream_of_frames_round_trips(data: st.DataObject, version: str) -> None:
    sent = data.draw(st.lists(frames(version), max_size=5), label="frames")
    beats = data.draw(
        st.lists(
            st.sampled_from([b"", b"\n", b"\r\n", b"\n\n"]),
            min_size=len(sent) + 1,
            max_size=len(sent) + 1,
        ),
        label="beats",
    )
    wire = beats[0] + b"".join(
        serialize(frame, version) + beat for frame, beat in zip(sent, beats[1:], strict=True)
    )
    expected: list[Event] = [HB] * beats[0].count(b"\n")
    for frame, beat in zip(sent, beats[1:], strict=True):
        expected.append(with_length(frame))
        expected.extend([HB] * beat.count(b"\n"))
    events, error = run_parser(chunked(data, wire), version, Limits())
    assert error is None
    assert events == expected


@PROPERTY
@given(data=st.data(), version=st.sampled_from(VERSIONS))
def test_message_template_round_trip(data: st.DataObject, version: str) -> None:
    escaped = version != "1.0"
    shared = data.draw(
        st.lists(
            st.tuples(
                header_text(version, escaped, name=True),
                header_text(version, escaped, name=False),
            ),
            max_size=5,
        ).map(tuple),
        label="shared",
    )
    body = data.draw(st.binary(max_size=100), label="body")
    subscription = data.draw(header_text(version, escaped, name=False), label="subscription")
    ack = data.draw(st.none() | header_text(version, escaped, name=False), label="ack")
    wire = MessageTemplate(shared, body).render(message_head(subscription, version), version, ack)
    ack_headers: Headers = () if ack is None else (("ack", ack),)
    full = Frame(Command.MESSAGE, (("subscription", subscription), *ack_headers, *shared), body)
    assert wire == serialize(full, version)
    events, error = run_parser(chunked(data, wire), version, Limits())
    assert error is None
    assert events == [with_length(full)]


@PROPERTY
@given(text=st.text(alphabet()), version=st.sampled_from(("1.1", "1.2")))
def test_escape_round_trip(text: str, version: str) -> None:
    if "\x00" in text or (version == "1.1" and "\r" in text):
        with pytest.raises(LocalProtocolError):
            escape(text, version)
        return
    escaped = escape(text, version)
    assert "\n" not in escaped
    assert ":" not in escaped
    if version == "1.2":
        assert "\r" not in escaped
    assert unescape(escaped, version) == text
