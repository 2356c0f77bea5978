"""
Version and heart-beat negotiation (STOMP 1.2 §Protocol Negotiation,
§Heart-beating), and the clock-free heart-beat monitor.

Times are plain numbers passed in by the caller: milliseconds for intervals,
seconds (as from a monotonic clock) for instants.

"""

from __future__ import annotations

import dataclasses

from .errors import InvalidFrame, UnsupportedVersion

__all__ = [
    "SUPPORTED_VERSIONS",
    "HeartBeatMonitor",
    "HeartBeatPolicy",
    "negotiate_heart_beat",
    "negotiate_version",
    "parse_heart_beat",
]

SUPPORTED_VERSIONS = ("1.0", "1.1", "1.2")


def negotiate_version(accept_version: str | None) -> str:
    """
    Pick the version for a session from the client's ``accept-version``.

    STOMP 1.2 §Protocol Negotiation: without the header the client speaks 1.0;
    otherwise the server "will respond with the highest version of the
    protocol that it has in common with the client", or with an ERROR frame
    listing the versions it supports.

    Raises:
        UnsupportedVersion: The client accepts none of ours.

    """
    if accept_version is None:
        return "1.0"
    offered = {version.strip() for version in accept_version.split(",")}
    for version in reversed(SUPPORTED_VERSIONS):
        if version in offered:
            return version
    supported = ",".join(SUPPORTED_VERSIONS)
    raise UnsupportedVersion(
        "unsupported protocol version",
        details=f"Supported protocol versions are {supported}",
        headers=(("version", supported), ("content-type", "text/plain")),
    )


def parse_heart_beat(value: str | None) -> tuple[int, int]:
    """
    Parse a ``heart-beat`` header into ``(cx, cy)`` milliseconds.

    Raises:
        InvalidFrame: The value is not two non-negative integers.

    """
    if value is None:
        return 0, 0  # STOMP 1.2 §Heart-beating: absent means "0,0".
    first, comma, second = value.partition(",")
    if not comma or not all(_is_milliseconds(part.strip()) for part in (first, second)):
        raise InvalidFrame(
            "invalid heart-beat header",
            details=f"heart-beat must be two non-negative integers, not {value[:40]!r}",
        )
    return int(first), int(second)


def _is_milliseconds(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


@dataclasses.dataclass(frozen=True, slots=True)
class HeartBeatPolicy:
    """
    What the server asks for and accepts.

    Attributes:
        send_floor_ms: The shortest interval at which the server sends beats.
        receive_ms: The interval at which the server wants client beats;
            0 asks for none.
        tolerance: How many intervals a silent client gets before timing out.

    """

    send_floor_ms: int = 1_000
    receive_ms: int = 10_000
    tolerance: float = 3.0

    def offer(self, client: tuple[int, int]) -> tuple[int, int]:
        """
        Return the ``(sx, sy)`` the server puts in CONNECTED.

        The server offers to send as often as the client asks (``cy``), but
        not more often than its floor.
        """
        _, cy = client
        return (max(cy, self.send_floor_ms) if cy else 0), self.receive_ms


def negotiate_heart_beat(client: tuple[int, int], server: tuple[int, int]) -> tuple[int, int]:
    """
    Return the server's ``(send_ms, receive_ms)``; 0 means none.

    STOMP 1.2 §Heart-beating: with the client's ``cx,cy`` and the server's
    ``sx,sy``, the server sends every ``max(sx, cy)`` ms unless either is 0,
    and expects the client every ``max(cx, sy)`` ms unless either is 0.
    """
    cx, cy = client
    sx, sy = server
    send = max(sx, cy) if sx and cy else 0
    receive = max(cx, sy) if cx and sy else 0
    return send, receive


class HeartBeatMonitor:
    """
    Decide when to send a beat and when the peer has gone silent.

    Args:
        send_ms: Negotiated send interval; 0 sends none.
        receive_ms: Negotiated receive interval; 0 checks nothing.
        tolerance: A peer silent for ``receive_ms * tolerance`` has timed out.
        now: Current time in seconds.

    """

    __slots__ = ("_last_received", "_last_sent", "_receive", "_send", "_timeout")

    def __init__(self, send_ms: int, receive_ms: int, tolerance: float, now: float) -> None:
        self._send = send_ms / 1000
        self._receive = receive_ms / 1000
        self._timeout = self._receive * tolerance
        self._last_sent = now
        self._last_received = now

    def received(self, now: float) -> None:
        """Record that the peer sent something (a frame or a beat)."""
        self._last_received = now

    def sent(self, now: float) -> None:
        """Record that we sent something."""
        self._last_sent = now

    def send_due(self, now: float) -> bool:
        """Tell whether a beat must be sent now to keep the promise."""
        return bool(self._send) and now - self._last_sent >= self._send

    def timed_out(self, now: float) -> bool:
        """Tell whether the peer has been silent for too long."""
        return bool(self._timeout) and now - self._last_received >= self._timeout

    def next_check(self) -> float | None:
        """Return when :meth:`send_due` or :meth:`timed_out` may next turn true."""
        deadlines = []
        if self._send:
            deadlines.append(self._last_sent + self._send)
        if self._timeout:
            deadlines.append(self._last_received + self._timeout)
        return min(deadlines) if deadlines else None
