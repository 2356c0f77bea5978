from __future__ import annotations

# Tests for :mod:`protocol.serializer`.
import pytest

from protocol.errors import LocalProtocolError
from protocol.frames import Command, Frame, Headers
from protocol.parser import Parser
from protocol.serializer import MessageTemplate, encode_header, message_head, serialize

C = Command
VERSIONS = ("1.0", "1.1", "1.2")


@pytest.mark.parametrize(
    ("frame", "version", "expected"),
    [
        (
            Frame(C.CONNECTED, (("version", "1.2"),)),
            "1.2",
            b"CONNECTED\nversion:1.2\n\n\x00",
        ),
        (
            Frame(C.CONNECT, (("accept-version", "1.2"), ("host", "stomp.github.org"))),
            "1.2",
            b"CONNECT\naccept-version:1.2\nhost:stomp.github.org\n\n\x00",
        ),
        (Frame(C.DISCONNECT), "1.0", b"DISCONNECT\n\n\x00"),
        (Frame(C.RECEIPT, (("receipt-id", "77"),)), "1.1", b"RECEIPT\nreceipt-id:77\n\n\x00"),
        # Automatic content-length for non-empty bodies, appended after the headers.
        (
            Frame(C.SEND, (("destination", "/queue/a"),), b"hello queue a"),
            "1.2",
            b"SEND\ndestination:/queue/a\ncontent-length:13\n\nhello queue a\x00",
        ),
        (
            Frame(C.MESSAGE, (), b"a\x00b"),
            "1.0",
            b"MESSAGE\ncontent-length:3\n\na\x00b\x00",
        ),
        (
            Frame(C.SEND, (), "\u20ac".encode()),
            "1.1",
            b"SEND\ncontent-length:3\n\n\xe2\x82\xac\x00",
        ),
        # No content-length for an empty body.
        (Frame(C.SEND, (("destination", "/q"),)), "1.2", b"SEND\ndestination:/q\n\n\x00"),
        # An explicit content-length is kept, in place, and not repeated.
        (
            Frame(C.SEND, (("content-length", "2"), ("destination", "/q")), b"ab"),
            "1.2",
            b"SEND\ncontent-length:2\ndestination:/q\n\nab\x00",
        ),
        # Repeated headers are written in order.
        (
            Frame(C.MESSAGE, (("foo", "World"), ("foo", "Hello"))),
            "1.2",
            b"MESSAGE\nfoo:World\nfoo:Hello\n\n\x00",
        ),
        # Escaping per version.
        (
            Frame(C.MESSAGE, (("a:b", "c\nd\re\\f"),)),
            "1.2",
            b"MESSAGE\na\\cb:c\\nd\\re\\\\f\n\n\x00",
        ),
        (
            Frame(C.MESSAGE, (("a:b", "c\nd\\f"),)),
            "1.1",
            b"MESSAGE\na\\cb:c\\nd\\\\f\n\n\x00",
        ),
        (
            Frame(C.ERROR, (("message", "a:b\\c"),)),
            "1.0",
            b"ERROR\nmessage:a:b\\c\n\n\x00",
        ),
        # CONNECT and CONNECTED are never escaped.
        (
            Frame(C.CONNECTED, (("server", "a:b\\c"),)),
            "1.2",
            b"CONNECTED\nserver:a:b\\c\n\n\x00",
        ),
        (
            Frame(C.CONNECT, (("passcode", "p:w\\d"),)),
            "1.1",
            b"CONNECT\npasscode:p:w\\d\n\n\x00",
        ),
        (
            Frame(C.MESSAGE, (("caf\u00e9", "\u20ac"),)),
            "1.2",
            "MESSAGE\ncaf\u00e9:\u20ac\n\n\x00".encode(),
        ),
    ],
)
def test_serialize_bytes(frame: Frame, version: str, expected: bytes) -> None:
    assert serialize(frame, version) == expected


def test_default_version_is_1_2() -> None:
    frame = Frame(C.MESSAGE, (("x", "a\rb"),))
    assert serialize(frame) == serialize(frame, "1.2") == b"MESSAGE\nx:a\\rb\n\n\x00"


@pytest.mark.parametrize(
    ("frame", "version"),
    [
        (Frame(C.CONNECTED, (("server", "a\nb"),)), "1.0"),
        (Frame(C.CONNECTED, (("server", "a\nb"),)), "1.1"),
        (Frame(C.CONNECTED, (("server", "a\nb"),)), "1.2"),
        (Frame(C.CONNECTED, (("ser\nver", "x"),)), "1.2"),
        (Frame(C.CONNECTED, (("server", "a\rb"),)), "1.2"),
        (Frame(C.CONNECT, (("login", "a\nb"),)), "1.2"),
        (Frame(C.MESSAGE, (("x", "a\nb"),)), "1.0"),
        (Frame(C.ERROR, (("message", "line\r\n"),)), "1.0"),
        (Frame(C.RECEIPT, (("receipt-id", "a\0b"),)), "1.0"),
        (Frame(C.MESSAGE, (("x\n", "a"),)), "1.0"),
    ],
)
def test_unencodable_header_without_escaping(frame: Frame, version: str) -> None:
    with pytest.raises(LocalProtocolError):
        serialize(frame, version)


@pytest.mark.parametrize(
    ("name", "value", "command", "version", "expected"),
    [
        ("destination", "/q", C.SEND, "1.0", b"destination:/q\n"),
        ("a:b", "c\nd", C.SEND, "1.1", b"a\\cb:c\\nd\n"),
        ("x", "\r", C.MESSAGE, "1.2", b"x:\\r\n"),
        ("x", "a:b", C.CONNECTED, "1.2", b"x:a:b\n"),
        ("x", "", C.MESSAGE, "1.2", b"x:\n"),
    ],
)
def test_encode_header(
    name: str, value: str, command: Command, version: str, expected: bytes
) -> None:
    assert encode_header(name, value, command, version) == expected


@pytest.mark.parametrize(
    ("subscription", "version", "expected"),
    [
        ("sub-0", "1.0", b"MESSAGE\nsubscription:sub-0\n"),
        ("sub-0", "1.2", b"MESSAGE\nsubscription:sub-0\n"),
        ("a:b", "1.1", b"MESSAGE\nsubscription:a\\cb\n"),
        ("a\rb", "1.2", b"MESSAGE\nsubscription:a\\rb\n"),
        ("a:b", "1.0", b"MESSAGE\nsubscription:a:b\n"),
    ],
)
def test_message_head(subscription: str, version: str, expected: bytes) -> None:
    assert message_head(subscription, version) == expected


def test_message_head_refuses_newline_in_1_0() -> None:
    with pytest.raises(LocalProtocolError):
        message_head("a\nb", "1.0")


SHARED_PLAIN: Headers = (
    ("destination", "/topic/chat"),
    ("message-id", "m-1"),
    ("content-type", "text/plain;charset=utf-8"),
)
SHARED_ESCAPED: Headers = (
    ("destination", "/topic/a:b"),
    ("message-id", "m\\1"),
    ("x-note", "two\nlines"),
)


def _message_cases() -> list[tuple[str, Headers, bytes, str, str | None]]:
    cases: list[tuple[str, Headers, bytes, str, str | None]] = []
    for version in VERSIONS:
        shared_sets = [SHARED_PLAIN, ()] if version == "1.0" else [SHARED_PLAIN, SHARED_ESCAPED]
        for shared in shared_sets:
            for body in (b"", b"hello", b"nul\x00inside"):
                for ack in (None, "ack-7"):
                    subscription = "sub-1" if version == "1.0" else "sub:1"
                    cases.append((version, shared, body, subscription, ack))
    return cases


@pytest.mark.parametrize(("version", "shared", "body", "subscription", "ack"), _message_cases())
def test_template_matches_serialize(
    version: str, shared: Headers, body: bytes, subscription: str, ack: str | None
) -> None:
    template = MessageTemplate(shared, body)
    ack_headers: Headers = () if ack is None else (("ack", ack),)
    full = Frame(C.MESSAGE, (("subscription", subscription), *ack_headers, *shared), body)
    rendered = template.render(message_head(subscription, version), version, ack)
    assert rendered == serialize(full, version)
    # The rendered frame parses back to the full frame plus content-length.
    (parsed,) = Parser(version=version).feed(rendered)
    length: Headers = (("content-length", str(len(body))),) if body else ()
    assert parsed == Frame(C.MESSAGE, full.headers + length, body)


def test_template_header_order_is_subscription_ack_shared_content_length() -> None:
    template = MessageTemplate((("destination", "/q"), ("message-id", "7")), b"hi")
    assert template.render(message_head("s", "1.2"), "1.2", "a") == (
        b"MESSAGE\nsubscription:s\nack:a\ndestination:/q\nmessage-id:7\ncontent-length:2\n\nhi\x00"
    )


def test_template_explicit_content_length_not_repeated() -> None:
    template = MessageTemplate((("content-length", "2"),), b"hi")
    assert template.render(message_head("s", "1.2"), "1.2") == (
        b"MESSAGE\nsubscription:s\ncontent-length:2\n\nhi\x00"
    )


def test_template_serves_many_subscriptions_and_versions() -> None:
    template = MessageTemplate(SHARED_ESCAPED, b"body")
    for _ in range(2):  # second round hits the per-version cache
        for version in ("1.1", "1.2"):
            for index in range(3):
                subscription = f"s{index}"
                ack = None if index == 0 else f"ack-{index}"
                ack_headers: Headers = () if ack is None else (("ack", ack),)
                expected = serialize(
                    Frame(
                        C.MESSAGE,
                        (("subscription", subscription), *ack_headers, *SHARED_ESCAPED),
                        b"body",
                    ),
                    version,
                )
                head = message_head(subscription, version)
                assert template.render(head, version, ack) == expected
    # The 1.1 and 1.2 renderings differ only where escaping differs; here they agree.
    assert template.render(message_head("s", "1.1"), "1.1") == template.render(
        message_head("s", "1.2"), "1.2"
    )


@pytest.mark.parametrize(
    ("headers", "message_id"),
    [
        ((("destination", "/q"), ("message-id", "m-1")), "m-1"),
        ((("message-id", "first"), ("message-id", "second")), "first"),
        ((("destination", "/q"),), ""),
        ((), ""),
    ],
)
def test_template_message_id(headers: Headers, message_id: str) -> None:
    assert MessageTemplate(headers, b"").message_id == message_id


@pytest.mark.parametrize(
    ("body", "is_text"),
    [
        (b"", True),
        (b"hello", True),
        ("caf\u00e9 \u20ac \U0001f600".encode(), True),
        (b"nul\x00is still utf-8", True),
        (b"\xff", False),
        (b"\xc3", False),  # truncated sequence
        (b"\xed\xa0\x80", False),  # encoded surrogate
        (b"\xc0\xaf", False),  # overlong
    ],
)
def test_template_is_text(body: bytes, is_text: bool) -> None:
    assert MessageTemplate((), body).is_text is is_text


def test_template_escapes_ack_per_version() -> None:
    template = MessageTemplate((), b"")
    assert template.render(message_head("s", "1.2"), "1.2", "a\rb") == (
        b"MESSAGE\nsubscription:s\nack:a\\rb\n\n\x00"
    )
    with pytest.raises(LocalProtocolError):
        template.render(message_head("s", "1.0"), "1.0", "a\nb")


def test_template_refuses_unencodable_shared_headers_in_1_0() -> None:
    template = MessageTemplate((("x", "a\nb"),), b"")
    with pytest.raises(LocalProtocolError):
        template.render(message_head("s", "1.0"), "1.0")
    assert template.render(message_head("s", "1.2"), "1.2").endswith(b"x:a\\nb\n\n\x00")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "frame",
    [
        Frame(C.SEND, (("destination", "/q"), ("receipt", "r")), b"body\x00with nul"),
        Frame(C.MESSAGE, (("a", "1"), ("a", "2")), b"\n\n"),
        Frame(C.ERROR, (("message", "m"),), b"details"),
        Frame(C.DISCONNECT),
    ],
)
def test_serialize_parse_round_trip(frame: Frame, version: str) -> None:
    (parsed,) = Parser(version=version).feed(serialize(frame, version))
    length: Headers = (("content-length", str(len(frame.body))),) if frame.body else ()
    assert parsed == Frame(frame.command, frame.headers + length, frame.body)


@pytest.mark.parametrize(
    ("frame", "version"),
    [
        (Frame(C.CONNECTED, (("a:b", "c"),)), "1.2"),
        (Frame(C.MESSAGE, (("a:b", "c"),)), "1.0"),
    ],
)
def test_colon_in_unescaped_header_name_is_refused(frame: Frame, version: str) -> None:
    with pytest.raises(LocalProtocolError):
        serialize(frame, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_unencodable_text_is_a_local_protocol_error(version: str) -> None:
    with pytest.raises(LocalProtocolError):
        serialize(Frame(C.MESSAGE, (("x", "\ud800"),)), version)


@pytest.mark.parametrize("command", [C.MESSAGE, C.RECEIPT, C.ERROR])
def test_carriage_return_in_1_1_is_refused_or_round_trips(command: Command) -> None:
    frame = Frame(command, (("x", "a\r"),))
    try:
        wire = serialize(frame, "1.1")
    except LocalProtocolError:
        return
    assert list(Parser(version="1.1").feed(wire)) == [frame]
