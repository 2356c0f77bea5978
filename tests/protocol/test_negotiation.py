from __future__ import annotations

# Tests for :mod:`protocol.negotiation` (STOMP 1.2 §Protocol Negotiation, §Heart-beating).
import pytest

from protocol.errors import InvalidFrame, ProtocolError, UnsupportedVersion
from protocol.negotiation import (
    SUPPORTED_VERSIONS,
    HeartBeatMonitor,
    HeartBeatPolicy,
    negotiate_heart_beat,
    negotiate_version,
    parse_heart_beat,
)


def test_supported_versions() -> None:
    assert SUPPORTED_VERSIONS == ("1.0", "1.1", "1.2")


@pytest.mark.parametrize(
    ("accept_version", "expected"),
    [
        (None, "1.0"),  # no accept-version: a 1.0 client
        ("1.0", "1.0"),
        ("1.1", "1.1"),
        ("1.2", "1.2"),
        ("1.1,1.0", "1.1"),
        ("1.0,1.1", "1.1"),
        ("1.0,1.1,1.2", "1.2"),
        ("1.2,1.0", "1.2"),
        ("1.0,2.0", "1.0"),
        ("2.0,1.1,3.0", "1.1"),
        (" 1.1 , 1.0 ", "1.1"),
    ],
)
def test_negotiate_version(accept_version: str | None, expected: str) -> None:
    assert negotiate_version(accept_version) == expected


@pytest.mark.parametrize("accept_version", ["2.0", "", "1.3", "1", "1.2.0", "v1.2", "2.0,3.0"])
def test_unsupported_version(accept_version: str) -> None:
    with pytest.raises(UnsupportedVersion) as info:
        negotiate_version(accept_version)
    error = info.value
    assert isinstance(error, InvalidFrame)
    assert isinstance(error, ProtocolError)
    assert ("version", "1.0,1.1,1.2") in error.headers
    assert error.message == "unsupported protocol version"
    assert "1.0,1.1,1.2" in error.details
    assert error.receipt_id is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, (0, 0)),  # absent means 0,0
        ("0,0", (0, 0)),
        ("0,1000", (0, 1000)),
        ("1000,0", (1000, 0)),
        ("4000,6000", (4000, 6000)),
        ("007,08", (7, 8)),
        ("10000000000,1", (10_000_000_000, 1)),
    ],
)
def test_parse_heart_beat(value: str | None, expected: tuple[int, int]) -> None:
    assert parse_heart_beat(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        ",",
        "1",
        "1,",
        ",1",
        "a,b",
        "-1,0",
        "0,-1",
        "1,2,3",
        "1;2",
        "+1,0",
        "1.5,0",
        "1 0",
        "0x1,0",
    ],
)
def test_parse_heart_beat_malformed(value: str) -> None:
    with pytest.raises(InvalidFrame) as info:
        parse_heart_beat(value)
    assert info.value.message == "invalid heart-beat header"


@pytest.mark.parametrize("value", ["\u00b2,0", "0,\u00b9"])
def test_parse_heart_beat_superscript_digits(value: str) -> None:
    with pytest.raises(InvalidFrame):
        parse_heart_beat(value)


def test_parse_heart_beat_non_ascii_digits() -> None:
    with pytest.raises(InvalidFrame):
        parse_heart_beat("\u0661\u0662,0")


def test_parse_heart_beat_thousands_of_digits() -> None:
    with pytest.raises(InvalidFrame):
        parse_heart_beat("9" * 4301 + ",0")


@pytest.mark.parametrize(
    ("client", "server", "expected"),
    [
        # Either side 0 means no heart-beat in that direction.
        ((0, 0), (0, 0), (0, 0)),
        ((0, 0), (1000, 1000), (0, 0)),
        ((1000, 1000), (0, 0), (0, 0)),
        ((0, 1000), (500, 0), (1000, 0)),
        ((1000, 0), (0, 500), (0, 1000)),
        # Otherwise the larger of the two.
        ((4000, 6000), (5000, 3000), (6000, 4000)),
        ((10000, 100), (1000, 5000), (1000, 10000)),
        ((1, 1), (1, 1), (1, 1)),
    ],
)
def test_negotiate_heart_beat(
    client: tuple[int, int], server: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert negotiate_heart_beat(client, server) == expected


@pytest.mark.parametrize(
    ("policy", "client", "expected"),
    [
        (HeartBeatPolicy(), (0, 0), (0, 10_000)),
        (HeartBeatPolicy(), (5000, 0), (0, 10_000)),
        (HeartBeatPolicy(), (0, 500), (1000, 10_000)),  # not below the floor
        (HeartBeatPolicy(), (0, 1000), (1000, 10_000)),
        (HeartBeatPolicy(), (0, 5000), (5000, 10_000)),  # as often as asked
        (HeartBeatPolicy(send_floor_ms=2000, receive_ms=0), (3000, 100), (2000, 0)),
        (HeartBeatPolicy(send_floor_ms=0, receive_ms=500), (0, 100), (100, 500)),
    ],
)
def test_policy_offer(
    policy: HeartBeatPolicy, client: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert policy.offer(client) == expected


def test_policy_defaults() -> None:
    policy = HeartBeatPolicy()
    assert (policy.send_floor_ms, policy.receive_ms, policy.tolerance) == (1000, 10_000, 3.0)


def test_offer_then_negotiate() -> None:
    client = (4000, 500)
    offer = HeartBeatPolicy().offer(client)
    assert offer == (1000, 10_000)
    assert negotiate_heart_beat(client, offer) == (1000, 10_000)


def test_monitor_send_due() -> None:
    monitor = HeartBeatMonitor(send_ms=1000, receive_ms=0, tolerance=3.0, now=100.0)
    assert not monitor.send_due(100.0)
    assert not monitor.send_due(100.999)
    assert monitor.send_due(101.0)
    assert monitor.send_due(150.0)
    monitor.sent(101.0)
    assert not monitor.send_due(101.5)
    assert monitor.send_due(102.0)
    # Receiving does not postpone sending.
    monitor.received(102.0)
    assert monitor.send_due(102.0)
    assert not monitor.timed_out(1e9)


def test_monitor_timed_out_with_tolerance() -> None:
    monitor = HeartBeatMonitor(send_ms=0, receive_ms=2000, tolerance=3.0, now=100.0)
    assert not monitor.timed_out(102.0)  # one interval late is tolerated
    assert not monitor.timed_out(105.999)
    assert monitor.timed_out(106.0)  # 2 s * 3
    monitor.received(105.0)
    assert not monitor.timed_out(106.0)
    assert not monitor.timed_out(110.999)
    assert monitor.timed_out(111.0)
    # Sending does not count as hearing from the peer.
    monitor.sent(111.0)
    assert monitor.timed_out(111.0)
    assert not monitor.send_due(1e9)


def test_monitor_fractional_tolerance() -> None:
    monitor = HeartBeatMonitor(send_ms=0, receive_ms=1000, tolerance=1.5, now=0.0)
    assert not monitor.timed_out(1.25)
    assert monitor.timed_out(1.5)


def test_monitor_next_check() -> None:
    monitor = HeartBeatMonitor(send_ms=1000, receive_ms=2000, tolerance=3.0, now=100.0)
    assert monitor.next_check() == 101.0  # min(send at 101, timeout at 106)
    monitor.sent(101.0)
    assert monitor.next_check() == 102.0
    monitor.sent(105.5)
    assert monitor.next_check() == 106.0  # the timeout comes first now
    monitor.received(105.0)
    assert monitor.next_check() == 106.5


@pytest.mark.parametrize(
    ("send_ms", "receive_ms", "expected"),
    [
        (0, 0, None),
        (500, 0, 10.5),
        (0, 500, 11.5),  # 10 + 0.5 * 3
        (500, 500, 10.5),
    ],
)
def test_monitor_next_check_per_direction(
    send_ms: int, receive_ms: int, expected: float | None
) -> None:
    monitor = HeartBeatMonitor(send_ms, receive_ms, 3.0, now=10.0)
    assert monitor.next_check() == expected


def test_monitor_without_heart_beats_never_fires() -> None:
    monitor = HeartBeatMonitor(0, 0, 3.0, now=0.0)
    for now in (0.0, 1.0, 1e6):
        assert not monitor.send_due(now)
        assert not monitor.timed_out(now)
    assert monitor.next_check() is None
