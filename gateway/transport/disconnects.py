"""
Every way the gateway ends a connection: the WebSocket close code and reason.

The codes are RFC 6455 §7.4.1's; a reason is at most 123 bytes of UTF-8
(§5.5: a control frame's payload is at most 125 bytes, 2 of them the code).
"""

from __future__ import annotations

import dataclasses

from websockets.frames import CloseCode

__all__ = [
    "CLIENT_CLOSED",
    "CLIENT_DISCONNECTED",
    "CONNECTION_LOST",
    "HEART_BEAT_TIMEOUT",
    "NORMAL",
    "SERVER_GOING_AWAY",
    "Disconnect",
    "going_away",
    "internal_error",
    "protocol_error",
    "slow_consumer",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Disconnect:
    """A close code and its reason, as the WebSocket close frame carries them."""

    code: int
    reason: str


# A close with nothing to tell.
NORMAL = Disconnect(CloseCode.NORMAL_CLOSURE, "")
# STOMP 1.2 §DISCONNECT: the client asked, after its RECEIPT.
CLIENT_DISCONNECTED = Disconnect(CloseCode.NORMAL_CLOSURE, "client disconnected")
# STOMP 1.2 §Heart-beating: the client fell silent past its promise and the tolerance.
HEART_BEAT_TIMEOUT = Disconnect(CloseCode.POLICY_VIOLATION, "heart-beat timeout")
# The client's close frame carried no reason of its own.
CLIENT_CLOSED = Disconnect(CloseCode.NORMAL_CLOSURE, "client closed the connection")
# RFC 6455 §7.1.5: no close frame was exchanged (reported, never sent).
CONNECTION_LOST = Disconnect(CloseCode.ABNORMAL_CLOSURE, "connection lost")
# RFC 6455 §7.4.1: the server stops serving a connection still open (its task
# was cancelled); §7.1.1 lets it close, and 1006 MUST NOT be sent.
SERVER_GOING_AWAY = Disconnect(CloseCode.GOING_AWAY, "server going away")


def protocol_error(reason: str) -> Disconnect:
    """After a STOMP ERROR (STOMP 1.2 §ERROR: the server MUST then close)."""
    return Disconnect(CloseCode.PROTOCOL_ERROR, reason)


def going_away(reason: str) -> Disconnect:
    """The server shuts down or restarts."""
    return Disconnect(CloseCode.GOING_AWAY, reason)


def internal_error(reason: str) -> Disconnect:
    """The server failed while serving the connection."""
    return Disconnect(CloseCode.INTERNAL_ERROR, reason)


def slow_consumer(why: str) -> Disconnect:
    """The client reads too slowly: its queue grew past the limits."""
    return Disconnect(CloseCode.POLICY_VIOLATION, f"slow consumer: {why}")
