from __future__ import annotations

# Tests for :mod:`protocol.parser`, drawn from the STOMP 1.2 specification.
from collections.abc import Callable

import pytest

from protocol.errors import LimitExceeded, MalformedFrame, ProtocolError
from protocol.frames import Command, Frame
from protocol.parser import Limits, Parser

from ._helpers import (
    HB,
    Event,
    byte_by_byte,
    parse,
    parse_bytes,
    parse_until_error,
    random_splits,
    whole,
)

C = Command

# (id, version, bytes, expected events). Every stream here is valid.
VALID: list[tuple[str, str, bytes, list[Event]]] = [
    (
        "spec-connect",
        "1.0",
        b"CONNECT\naccept-version:1.2\nhost:stomp.github.org\n\n\x00",
        [Frame(C.CONNECT, (("accept-version", "1.2"), ("host", "stomp.github.org")))],
    ),
    (
        "spec-stomp",
        "1.0",
        b"STOMP\naccept-version:1.2\nhost:stomp.github.org\n\n\x00",
        [Frame(C.STOMP, (("accept-version", "1.2"), ("host", "stomp.github.org")))],
    ),
    (
        "spec-connected",
        "1.2",
        b"CONNECTED\nversion:1.2\n\n\x00",
        [Frame(C.CONNECTED, (("version", "1.2"),))],
    ),
    (
        "spec-send-to-nul",
        "1.2",
        b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n\x00",
        [
            Frame(
                C.SEND,
                (("destination", "/queue/a"), ("content-type", "text/plain")),
                b"hello queue a\n",
            )
        ],
    ),
    (
        "content-length-body-with-nul",
        "1.2",
        b"SEND\ndestination:/queue/a\ncontent-length:7\n\nhe\x00l\x00o\x00\x00",
        [
            Frame(
                C.SEND,
                (("destination", "/queue/a"), ("content-length", "7")),
                b"he\x00l\x00o\x00",
            )
        ],
    ),
    (
        "content-length-zero",
        "1.2",
        b"SEND\ndestination:/q\ncontent-length:0\n\n\x00",
        [Frame(C.SEND, (("destination", "/q"), ("content-length", "0")))],
    ),
    (
        "content-length-leading-zeros",
        "1.2",
        b"SEND\ncontent-length:003\n\nabc\x00",
        [Frame(C.SEND, (("content-length", "003"),), b"abc")],
    ),
    (
        "content-length-body-with-eols",
        "1.2",
        b"SEND\ncontent-length:4\n\n\n\r\n\n\x00",
        [Frame(C.SEND, (("content-length", "4"),), b"\n\r\n\n")],
    ),
    (
        "no-headers-no-body",
        "1.2",
        b"DISCONNECT\n\n\x00",
        [Frame(C.DISCONNECT)],
    ),
    (
        "crlf-line-endings",
        "1.2",
        b"SEND\r\ndestination:/queue/a\r\nreceipt:77\r\n\r\nhi\r\n\x00",
        [Frame(C.SEND, (("destination", "/queue/a"), ("receipt", "77")), b"hi\r\n")],
    ),
    (
        "mixed-line-endings",
        "1.2",
        b"SEND\r\ndestination:/q\nreceipt:1\r\n\nx\x00",
        [Frame(C.SEND, (("destination", "/q"), ("receipt", "1")), b"x")],
    ),
    (
        "heart-beat-lf",
        "1.2",
        b"\n",
        [HB],
    ),
    (
        "heart-beat-crlf",
        "1.2",
        b"\r\n",
        [HB],
    ),
    (
        "heart-beats-between-and-after-frames",
        "1.2",
        b"\n\r\nSEND\ndestination:/q\n\na\x00\n\r\n\nSEND\ndestination:/r\n\nb\x00\r\n",
        [
            HB,
            HB,
            Frame(C.SEND, (("destination", "/q"),), b"a"),
            HB,
            HB,
            HB,
            Frame(C.SEND, (("destination", "/r"),), b"b"),
            HB,
        ],
    ),
    (
        "heart-beat-after-content-length-frame",
        "1.2",
        b"SEND\ncontent-length:1\n\n\x00\x00\nDISCONNECT\n\n\x00",
        [Frame(C.SEND, (("content-length", "1"),), b"\x00"), HB, Frame(C.DISCONNECT)],
    ),
    (
        "repeated-headers-kept-in-order",
        "1.2",
        b"MESSAGE\nfoo:World\nfoo:Hello\n\n\x00",
        [Frame(C.MESSAGE, (("foo", "World"), ("foo", "Hello")))],
    ),
    (
        "repeated-content-length-first-wins",
        "1.2",
        b"SEND\ncontent-length:2\ncontent-length:5\n\nab\x00",
        [Frame(C.SEND, (("content-length", "2"), ("content-length", "5")), b"ab")],
    ),
    (
        "value-with-raw-colons",
        "1.0",
        b"SEND\nurl:http://x:80/a\n\n\x00",
        [Frame(C.SEND, (("url", "http://x:80/a"),))],
    ),
    (
        "empty-value-and-spaces-kept",
        "1.2",
        b"SEND\nempty:\n padded : value \n\n\x00",
        [Frame(C.SEND, (("empty", ""), (" padded ", " value ")))],
    ),
    (
        "utf8-headers",
        "1.2",
        "SEND\ncaf\u00e9:\u20ac \U0001f600\n\n\u00e9\x00".encode(),
        [Frame(C.SEND, (("caf\u00e9", "\u20ac \U0001f600"),), "\u00e9".encode())],
    ),
    (
        "binary-body-invalid-utf8-allowed",
        "1.2",
        b"SEND\n\n\xff\xfe\x80\x00",
        [Frame(C.SEND, (), b"\xff\xfe\x80")],
    ),
    (
        "every-command",
        "1.2",
        b"".join(c.value.encode() + b"\n\n\x00" for c in Command),
        [Frame(c) for c in Command],
    ),
    (
        "escapes-1.2",
        "1.2",
        b"MESSAGE\na\\cb:c\\nd\\re\\\\f\n\n\x00",
        [Frame(C.MESSAGE, (("a:b", "c\nd\re\\f"),))],
    ),
]

VALID_IDS = [case[0] for case in VALID]


@pytest.mark.parametrize(("version", "data", "expected"), [c[1:] for c in VALID], ids=VALID_IDS)
def test_valid_streams(version: str, data: bytes, expected: list[Event]) -> None:
    assert parse_bytes(data, version) == expected


Splitter = Callable[[bytes], list[bytes]]


def seeded(seed: int) -> Splitter:
    """Return a splitter cutting at random points chosen by ``seed``."""

    def split(data: bytes) -> list[bytes]:
        return random_splits(data, seed)

    return split


SPLITTERS: dict[str, Splitter] = {
    "whole": whole,
    "byte-by-byte": byte_by_byte,
    **{f"random-{seed}": seeded(seed) for seed in range(6)},
}


@pytest.mark.parametrize("splitter", SPLITTERS.values(), ids=SPLITTERS.keys())
@pytest.mark.parametrize(("version", "data", "expected"), [c[1:] for c in VALID], ids=VALID_IDS)
def test_chunking_does_not_matter(
    version: str, data: bytes, expected: list[Event], splitter: Splitter
) -> None:
    assert parse(splitter(data), version) == expected


def test_all_valid_streams_in_one_chunk() -> None:
    stream = b"".join(data for _, version, data, _ in VALID if version == "1.2")
    expected = [event for _, version, _, events in VALID if version == "1.2" for event in events]
    assert parse_bytes(stream, "1.2") == expected
    assert parse(byte_by_byte(stream), "1.2") == expected
    for seed in range(10):
        assert parse(random_splits(stream, seed), "1.2") == expected


def test_frame_is_yielded_as_soon_as_its_nul_arrives() -> None:
    parser = Parser()
    assert list(parser.feed(b"SEND\ndestination:/q\n\nhel")) == []
    assert list(parser.feed(b"lo")) == []
    assert list(parser.feed(b"\x00SE")) == [Frame(C.SEND, (("destination", "/q"),), b"hello")]
    assert list(parser.feed(b"ND\n\n\x00")) == [Frame(C.SEND)]


def test_content_length_frame_waits_for_the_nul() -> None:
    parser = Parser()
    assert list(parser.feed(b"SEND\ncontent-length:3\n\na\x00b")) == []
    assert list(parser.feed(b"")) == []
    assert list(parser.feed(b"\x00")) == [Frame(C.SEND, (("content-length", "3"),), b"a\x00b")]


def test_buffered() -> None:
    parser = Parser()
    assert parser.buffered == 0
    assert list(parser.feed(b"SEND\n\nab")) == []
    assert parser.buffered == 8
    assert list(parser.feed(b"\x00\nSEN")) == [Frame(C.SEND, (), b"ab"), HB]
    assert parser.buffered == 3
    assert list(parser.feed(b"D\n\n\x00")) == [Frame(C.SEND)]
    assert parser.buffered == 0


def test_default_limits() -> None:
    limits = Limits()
    assert limits.max_frame_size == 64 * 1024
    assert limits.max_headers == 64
    assert limits.max_header_line == 8 * 1024
    assert Parser().limits == limits
    assert Parser().version == "1.0"


# --- escaping per version ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "frame", "expected"),
    [
        # 1.0 escapes nothing.
        ("1.0", b"SEND\na\\cb:c\\nd\\\\\n\n\x00", ("a\\cb", "c\\nd\\\\")),
        ("1.0", b"SEND\nx:a\\tb\n\n\x00", ("x", "a\\tb")),
        ("1.0", b"SEND\nx:a\\rb\n\n\x00", ("x", "a\\rb")),
        # 1.1: \n \c \\.
        ("1.1", b"SEND\na\\cb:c\\nd\\\\\n\n\x00", ("a:b", "c\nd\\")),
        ("1.1", b"MESSAGE\nx:\\c\\c\n\n\x00", ("x", "::")),
        # 1.2 adds \r.
        ("1.2", b"SEND\na\\cb:c\\nd\\\\\n\n\x00", ("a:b", "c\nd\\")),
        ("1.2", b"SEND\nx:a\\rb\n\n\x00", ("x", "a\rb")),
        ("1.2", b"ERROR\nmessage:x\\ny\n\n\x00", ("message", "x\ny")),
        # CONNECT and CONNECTED are never escaped.
        ("1.1", b"CONNECT\nlogin:a\\cb\\n\\t\n\n\x00", ("login", "a\\cb\\n\\t")),
        ("1.2", b"CONNECT\nlogin:a\\cb\\n\\t\n\n\x00", ("login", "a\\cb\\n\\t")),
        ("1.2", b"CONNECTED\nserver:a\\rb\\\n\n\x00", ("server", "a\\rb\\")),
        ("1.1", b"CONNECTED\nserver:a\\rb\n\n\x00", ("server", "a\\rb")),
    ],
)
def test_escaping_per_version(version: str, frame: bytes, expected: tuple[str, str]) -> None:
    (parsed,) = parse_bytes(frame, version)
    assert isinstance(parsed, Frame)
    assert parsed.headers == (expected,)


@pytest.mark.parametrize(
    ("version", "frame"),
    [
        ("1.1", b"SEND\nx:a\\tb\n\n\x00"),
        ("1.2", b"SEND\nx:a\\tb\n\n\x00"),
        ("1.2", b"SEND\na\\tb:x\n\n\x00"),
        ("1.1", b"SEND\nx:a\\rb\n\n\x00"),  # \r is not an escape in 1.1
        ("1.2", b"SEND\nx:ends-with-backslash\\\n\n\x00"),
        ("1.2", b"MESSAGE\nx:\\C\n\n\x00"),
        ("1.1", b"SUBSCRIBE\nid:\\0\n\n\x00"),
    ],
)
def test_undefined_escape_is_malformed(version: str, frame: bytes) -> None:
    with pytest.raises(MalformedFrame) as info:
        parse_bytes(frame, version)
    assert info.value.message == "invalid header escape"


def test_version_can_change_between_frames() -> None:
    parser = Parser()
    data = b"SEND\nx:a\\cb\n\n\x00"
    assert list(parser.feed(data)) == [Frame(C.SEND, (("x", "a\\cb"),))]
    parser.version = "1.2"
    assert list(parser.feed(data)) == [Frame(C.SEND, (("x", "a:b"),))]


# --- malformed input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # Invalid UTF-8 in header lines.
        (b"SEND\ndestination:/q\xff\n\n\x00", "invalid UTF-8"),
        (b"SEND\n\xfe:x\n\n\x00", "invalid UTF-8"),
        (b"SEND\nx:\xc0\xaf\n\n\x00", "invalid UTF-8"),  # overlong '/'
        (b"SEND\nx:\xed\xa0\x80\n\n\x00", "invalid UTF-8"),  # UTF-8 encoded surrogate
        (b"SEND\nx:\xe2\x82\n\n\x00", "invalid UTF-8"),  # truncated sequence
        (b"CONNECT\nlogin:\x80\n\n\x00", "invalid UTF-8"),
        # Invalid UTF-8 or unknown bytes in the command line.
        (b"SEND\xff\n\n\x00", "unknown command"),
        (b"\xef\xbb\xbfSEND\n\n\x00", "unknown command"),  # BOM
        (b"\xc3\xa9\n\n\x00", "unknown command"),
        # Unknown commands.
        (b"FOO\n\n\x00", "unknown command"),
        (b"send\n\n\x00", "unknown command"),
        (b"SEND \n\n\x00", "unknown command"),
        (b" SEND\n\n\x00", "unknown command"),
        (b"\rSEND\n\n\x00", "unknown command"),
        (b"SEND\r\r\n\n\x00", "unknown command"),
        (b"HEARTBEAT\n\n\x00", "unknown command"),
        (b"\x00\n", "unknown command"),  # a stray NUL between frames
        # Header lines without a colon or without a name.
        (b"SEND\ndestination\n\n\x00", "malformed header"),
        (b"SEND\n:value\n\n\x00", "malformed header"),
        (b"SEND\n:\n\n\x00", "malformed header"),
        (b"SEND\ndestination:/q\nbogus\r\n\r\n\x00", "malformed header"),
        # A NUL in a header line: echoed back, it would end the frame early.
        (b"SEND\nx:1\x00ERROR\nmessage:server shutting down\n\n\x00", "malformed header"),
        (b"SUBSCRIBE\nid:a\x00\ndestination:/q\n\n\x00", "malformed header"),
        (b"SEND\nx\x00y:1\n\n\x00", "malformed header"),
        (b"DISCONNECT\nreceipt:\x00\n\n\x00", "malformed header"),
        # Bad content-length values.
        (b"SEND\ncontent-length:-1\n\n\x00", "invalid content-length"),
        (b"SEND\ncontent-length:+5\n\nhello\x00", "invalid content-length"),
        (b"SEND\ncontent-length:abc\n\n\x00", "invalid content-length"),
        ("SEND\ncontent-length:\u0661\u0662\n\n\x00".encode(), "invalid content-length"),
        ("SEND\ncontent-length:\u00b2\n\n\x00".encode(), "invalid content-length"),
        (b"SEND\ncontent-length:\n\n\x00", "invalid content-length"),
        (b"SEND\ncontent-length: 5\n\nhello\x00", "invalid content-length"),
        (b"SEND\ncontent-length:5 \n\nhello\x00", "invalid content-length"),
        (b"SEND\ncontent-length:0x5\n\nhello\x00", "invalid content-length"),
        (b"SEND\ncontent-length:5.0\n\nhello\x00", "invalid content-length"),
        (b"SEND\ncontent-length:1_0\n\n0123456789\x00", "invalid content-length"),
        (b"SEND\ncontent-length:1e1\n\n0123456789\x00", "invalid content-length"),
        # Only the first content-length counts, even when a later one is fine.
        (b"SEND\ncontent-length:x\ncontent-length:0\n\n\x00", "invalid content-length"),
        # Missing NUL after a content-length body.
        (b"SEND\ncontent-length:2\n\nabc\x00", "missing NUL"),
        (b"SEND\ncontent-length:0\n\na\x00", "missing NUL"),
        (b"SEND\ncontent-length:2\n\nab\n\x00", "missing NUL"),
    ],
)
@pytest.mark.parametrize("splitter", [whole, byte_by_byte], ids=["whole", "byte-by-byte"])
def test_malformed(data: bytes, message: str, splitter: Splitter) -> None:
    with pytest.raises(MalformedFrame) as info:
        parse(splitter(data), "1.2")
    assert info.value.message == message


def test_missing_nul_is_detected_before_the_next_frame() -> None:
    # The byte right after content-length octets must be NUL; the parser must
    # not go looking for a NUL further on.
    events, error = parse_until_error([b"SEND\ncontent-length:1\n\nab\x00SEND\n\n\x00"])
    assert events == []
    assert isinstance(error, MalformedFrame)


@pytest.mark.parametrize(
    "splitter",
    [whole, byte_by_byte, *map(seeded, range(5))],
)
@pytest.mark.parametrize(
    "bad",
    [b"BOGUS\n\n\x00", b"SEND\nno-colon\n\n\x00", b"SEND\ncontent-length:1\n\nxy\x00"],
)
def test_frames_before_a_bad_one_are_yielded_first(splitter: Splitter, bad: bytes) -> None:
    good = b"SEND\ndestination:/a\n\nA\x00\nSEND\ncontent-length:1\n\n\x00\x00\r\n"
    events, error = parse_until_error(splitter(good + bad + b"SEND\n\nafter\x00"))
    assert events == [
        Frame(C.SEND, (("destination", "/a"),), b"A"),
        HB,
        Frame(C.SEND, (("content-length", "1"),), b"\x00"),
        HB,
    ]
    assert isinstance(error, MalformedFrame)


# --- limits ----------------------------------------------------------------------------------


def _send_of_size(size: int) -> bytes:
    """Return a SEND frame (no content-length) of exactly ``size`` bytes, NUL included."""
    frame = b"SEND\n\n" + b"x" * (size - 7) + b"\x00"
    assert len(frame) == size
    return frame


@pytest.mark.parametrize("splitter", [whole, byte_by_byte], ids=["whole", "byte-by-byte"])
def test_max_frame_size_boundary(splitter: Splitter) -> None:
    limits = Limits(max_frame_size=100)
    assert parse(splitter(_send_of_size(100)), limits=limits) == [Frame(C.SEND, (), b"x" * 93)]
    with pytest.raises(LimitExceeded) as info:
        parse(splitter(_send_of_size(101)), limits=limits)
    assert info.value.message == "frame too large"


@pytest.mark.parametrize("splitter", [whole, byte_by_byte], ids=["whole", "byte-by-byte"])
def test_max_frame_size_with_content_length_boundary(splitter: Splitter) -> None:
    limits = Limits(max_frame_size=100)
    head = b"SEND\ncontent-length:76\n\n"  # 24 bytes
    frame = head + b"\x00" * 76 + b"\x00"
    assert len(frame) == 101
    with pytest.raises(LimitExceeded):
        parse(splitter(frame), limits=limits)
    head = b"SEND\ncontent-length:75\n\n"
    frame = head + b"\x00" * 75 + b"\x00"
    assert len(frame) == 100
    assert parse(splitter(frame), limits=limits) == [
        Frame(C.SEND, (("content-length", "75"),), b"\x00" * 75)
    ]


def test_content_length_over_limit_is_refused_before_the_body_arrives() -> None:
    parser = Parser(Limits(max_frame_size=1000))
    with pytest.raises(LimitExceeded) as info:
        list(parser.feed(b"SEND\ndestination:/q\ncontent-length:1000000\n\n"))
    assert info.value.message == "frame too large"


def test_content_length_at_limit_waits_for_the_body() -> None:
    head = b"SEND\ncontent-length:75\n\n"
    parser = Parser(Limits(max_frame_size=len(head) + 76))  # head + body + NUL
    assert list(parser.feed(head)) == []
    assert list(parser.feed(b"b" * 75 + b"\x00")) == [
        Frame(C.SEND, (("content-length", "75"),), b"b" * 75)
    ]


def test_content_length_one_over_limit_is_refused_on_the_head() -> None:
    head = b"SEND\ncontent-length:75\n\n"
    parser = Parser(Limits(max_frame_size=len(head) + 75))
    with pytest.raises(LimitExceeded):
        list(parser.feed(head))


def test_huge_body_without_content_length_is_refused_before_the_nul() -> None:
    parser = Parser(Limits(max_frame_size=1000))
    assert list(parser.feed(b"SEND\n\n" + b"x" * 900)) == []
    with pytest.raises(LimitExceeded):
        list(parser.feed(b"x" * 200))


def test_huge_head_is_refused() -> None:
    parser = Parser(Limits(max_frame_size=200, max_headers=1000))
    with pytest.raises(LimitExceeded) as info:
        list(parser.feed(b"SEND\n" + b"h:v\n" * 60))
    assert info.value.message == "frame too large"


def test_frame_size_is_per_frame() -> None:
    limits = Limits(max_frame_size=100)
    stream = _send_of_size(100) * 5 + b"\n" * 300
    assert parse_bytes(stream, limits=limits) == [Frame(C.SEND, (), b"x" * 93)] * 5 + [HB] * 300


@pytest.mark.parametrize("splitter", [whole, byte_by_byte], ids=["whole", "byte-by-byte"])
def test_max_headers(splitter: Splitter) -> None:
    limits = Limits(max_headers=3)
    ok = b"SEND\na:1\nb:2\na:3\n\n\x00"
    assert parse(splitter(ok), limits=limits) == [
        Frame(C.SEND, (("a", "1"), ("b", "2"), ("a", "3")))
    ]
    with pytest.raises(LimitExceeded) as info:
        parse(splitter(b"SEND\na:1\nb:2\na:3\nc:4\n\n\x00"), limits=limits)
    assert info.value.message == "too many headers"


def test_too_many_headers_refused_without_the_rest_of_the_frame() -> None:
    parser = Parser(Limits(max_headers=2))
    with pytest.raises(LimitExceeded):
        list(parser.feed(b"SEND\na:1\nb:2\nc:3\n"))


@pytest.mark.parametrize("splitter", [whole, byte_by_byte], ids=["whole", "byte-by-byte"])
def test_max_header_line_boundary(splitter: Splitter) -> None:
    limits = Limits(max_header_line=20)
    line = b"k:" + b"v" * 18  # 20 bytes
    assert parse(splitter(b"SEND\n" + line + b"\n\n\x00"), limits=limits) == [
        Frame(C.SEND, (("k", "v" * 18),))
    ]
    with pytest.raises(LimitExceeded) as info:
        parse(splitter(b"SEND\n" + line + b"v\n\n\x00"), limits=limits)
    assert info.value.message == "header line too long"


def test_unterminated_long_header_line_is_refused() -> None:
    parser = Parser(Limits(max_header_line=100))
    assert list(parser.feed(b"SEND\nk:" + b"v" * 90)) == []
    with pytest.raises(LimitExceeded) as info:
        list(parser.feed(b"v" * 20))
    assert info.value.message == "header line too long"


@pytest.mark.parametrize("prefix", [b"", b"\n\n", b"DISCONNECT\n\n\x00\n"])
def test_unterminated_long_command_line_is_refused(prefix: bytes) -> None:
    parser = Parser(Limits(max_header_line=100))
    with pytest.raises(LimitExceeded):
        list(parser.feed(prefix + b"C" * 101))


def test_long_body_lines_are_not_header_lines() -> None:
    limits = Limits(max_header_line=10)
    body = b"x" * 500
    assert parse_bytes(b"SEND\n\n" + body + b"\x00", limits=limits) == [Frame(C.SEND, (), body)]


def test_limit_error_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse_bytes(b"SEND\n" + b"a:b\n" * 65 + b"\n\x00")


def test_content_length_with_thousands_of_digits_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse_bytes(b"SEND\ncontent-length:" + b"9" * 4301 + b"\n\n\x00")


def test_content_length_with_many_leading_zeros() -> None:
    frame = b"SEND\ncontent-length:" + b"0" * 4300 + b"1\n\nx\x00"
    assert parse_bytes(frame) == [Frame(C.SEND, (("content-length", "0" * 4300 + "1"),), b"x")]


def test_repeated_header_first_wins_after_parsing() -> None:
    # STOMP 1.2 §Repeated Header Entries.
    (frame,) = parse_bytes(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\x00", "1.2")
    assert isinstance(frame, Frame)
    assert frame.get("foo") == "World"
    assert frame.without("foo").headers == ()
