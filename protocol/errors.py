"""
Errors raised by the STOMP protocol package.

The tree::

    StompError                    root of everything raised here
    ├── ProtocolError             the peer broke STOMP: answer with ERROR, then close
    │   ├── MalformedFrame        bytes that do not form a STOMP frame
    │   ├── LimitExceeded         a frame, header line or header count over a limit
    │   └── InvalidFrame          a well-formed frame that is not valid here
    │       └── UnsupportedVersion  no version in common with the client
    ├── Refused                   a valid frame the server declines; the session goes on
    └── LocalProtocolError        the caller misused this package

A :class:`ProtocolError` knows the ``ERROR`` frame to send back: a short
``message`` header, a longer ``details`` body, the ``receipt-id`` of the
offending frame when it carried a ``receipt`` header (STOMP 1.2 §ERROR), and
any extra headers (``version`` for :class:`UnsupportedVersion`). A
:class:`Refused` frame is no breach of STOMP: the server tells the client why
in its own way and keeps the session.

"""

from __future__ import annotations

__all__ = [
    "InvalidFrame",
    "LimitExceeded",
    "LocalProtocolError",
    "MalformedFrame",
    "ProtocolError",
    "Refused",
    "StompError",
    "UnsupportedVersion",
]


class StompError(Exception):
    """Root of the exceptions raised by :mod:`protocol`."""


class ProtocolError(StompError):
    """
    The peer broke the STOMP protocol.

    Args:
        message: Short description, sent in the ERROR frame's ``message`` header.
        details: Longer explanation, sent as the ERROR frame's body.
        receipt_id: The ``receipt`` header of the offending frame, if any.
        headers: Extra headers for the ERROR frame.

    """

    def __init__(
        self,
        message: str,
        *,
        details: str = "",
        receipt_id: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.receipt_id = receipt_id
        self.headers = headers

    def __str__(self) -> str:
        return f"{self.message}: {self.details}" if self.details else self.message


class MalformedFrame(ProtocolError):
    """Bytes that do not form a STOMP frame."""


class LimitExceeded(ProtocolError):
    """A frame, a header line or the number of headers is over a limit."""


class InvalidFrame(ProtocolError):
    """A well-formed frame that is not valid in the session's current state."""


class UnsupportedVersion(InvalidFrame):
    """The client accepts no protocol version this server speaks."""


class Refused(StompError):
    """
    A valid frame the server declines, e.g. over a per-session cap.

    Args:
        reason: Why, for the client.

    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LocalProtocolError(StompError):
    """The caller misused this package, e.g. serialized an unencodable header."""
