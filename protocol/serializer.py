"""
Frame serialization (STOMP 1.2 §STOMP Frames), and the fan-out fast path.

:func:`serialize` writes one frame. :class:`MessageTemplate` encodes a MESSAGE
once for many recipients: only the ``subscription`` and ``ack`` headers differ
between them, so those are spliced in front of the shared bytes.

"""

from __future__ import annotations

from .errors import LocalProtocolError
from .escaping import check_unescaped, escape, escapes_headers
from .frames import Command, Frame, Headers

__all__ = ["MessageTemplate", "encode_header", "message_head", "serialize"]


def encode_header(name: str, value: str, command: Command, version: str) -> bytes:
    """
    Encode one ``name:value`` header line with its EOL.

    Raises:
        LocalProtocolError: The header cannot be represented in ``version``
            (see :func:`~protocol.escaping.escape` and
            :func:`~protocol.escaping.check_unescaped`), its name is empty,
            or it is not encodable as UTF-8.

    """
    if not name:
        raise LocalProtocolError("a header name cannot be empty")
    if escapes_headers(command, version):
        name, value = escape(name, version), escape(value, version)
    else:
        name, value = check_unescaped(name, name=True), check_unescaped(value)
    try:
        return f"{name}:{value}\n".encode()
    except UnicodeEncodeError:
        raise LocalProtocolError(f"header {name!r} is not encodable as UTF-8") from None


def _encode_headers(frame: Frame, version: str) -> bytes:
    lines = [encode_header(k, v, frame.command, version) for k, v in frame.headers]
    # STOMP 1.2 §Header content-length: frames SHOULD include it when they
    # carry a body; it also lets the body contain NUL octets.
    length = frame.get("content-length")
    if length is None:
        if frame.body:
            lines.append(b"content-length:%d\n" % len(frame.body))
    elif not _is_length_of(length, frame.body):
        # A wrong length would let the peer read part of the body as frames.
        raise LocalProtocolError(f"content-length {length!r} is not the body's length")
    return b"".join(lines)


def _is_length_of(value: str, body: bytes) -> bool:
    """Tell whether a peer reads ``value`` as the length of ``body`` (leading zeros allowed)."""
    return value.isascii() and value.isdigit() and value.lstrip("0") == str(len(body)).lstrip("0")


def serialize(frame: Frame, version: str = "1.2") -> bytes:
    """
    Return the bytes of ``frame`` as spoken in STOMP ``version``.

    What is returned parses back to exactly ``frame`` (with ``content-length``
    added when the body is not empty), so no header or body can make a peer
    read a frame the caller did not write.

    Raises:
        LocalProtocolError: ``frame`` cannot be represented in ``version``:
            a header holds a NUL, an unescapable CR or LF (see
            :func:`encode_header`), or its ``content-length`` is not the
            body's length.

    """
    head = frame.command.value.encode() + b"\n" + _encode_headers(frame, version)
    return head + b"\n" + frame.body + b"\0"


class MessageTemplate:
    """
    A MESSAGE frame encoded once, addressed to many subscriptions.

    Attributes:
        message_id: The ``message-id`` header.
        is_text: Whether the body is UTF-8, so the frame may travel as text.

    Args:
        headers: Headers shared by every copy (``destination``,
            ``message-id``, ``content-type``...); ``content-length`` is added.
        body: The message body.

    """

    __slots__ = ("_body", "_headers", "_tails", "is_text", "message_id")

    def __init__(self, headers: Headers, body: bytes) -> None:
        self._headers = headers
        self._body = body
        self._tails: dict[str, bytes] = {}
        self.message_id = Frame(Command.MESSAGE, headers).get("message-id", "")
        self.is_text = _is_utf8(body)

    def _tail(self, version: str) -> bytes:
        tail = self._tails.get(version)
        if tail is None:
            shared = Frame(Command.MESSAGE, self._headers, self._body)
            tail = _encode_headers(shared, version) + b"\n" + self._body + b"\0"
            self._tails[version] = tail
        return tail

    def render(self, head: bytes, version: str, ack: str | None = None) -> bytes:
        """
        Return the frame for one subscription.

        Args:
            head: The subscription's :func:`message_head`, computed once.
            version: The subscriber's STOMP version.
            ack: The ``ack`` header, for subscriptions that acknowledge.

        """
        if ack is not None:
            head += encode_header("ack", ack, Command.MESSAGE, version)
        return head + self._tail(version)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def message_head(subscription: str, version: str) -> bytes:
    """Return the start of every MESSAGE sent to ``subscription``."""
    return b"MESSAGE\n" + encode_header("subscription", subscription, Command.MESSAGE, version)
