"""
Incremental STOMP frame parser (STOMP 1.2 §STOMP Frames, §Augmented BNF).

Feed it bytes in chunks of any size; it yields a :class:`~protocol.frames.Frame`
for each complete frame and a :class:`~protocol.frames.HeartBeat` for each EOL
between frames. Malformed input raises a :class:`~protocol.errors.ProtocolError`
subclass; the frames before the bad one have been yielded already.

"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from .errors import LimitExceeded, MalformedFrame
from .escaping import escapes_headers, unescape
from .frames import Command, Frame, HeartBeat

__all__ = ["Limits", "Parser"]

_COMMANDS = {command.value.encode(): command for command in Command}
_HEARTBEAT = HeartBeat()


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """
    Bounds on what a peer may send.

    Attributes:
        max_frame_size: Bytes of one frame, from its command to its NUL.
            64 KiB by default, like Spring's STOMP broker.
        max_headers: Number of header lines in one frame.
        max_header_line: Bytes of one header line (or command line).
        max_bytes_before_connect: Bytes a client may send before its
            session is connected, heart-beats and a CONNECT cut in pieces
            included (the session, not the parser, holds to it).

    """

    max_frame_size: int = 64 * 1024
    max_headers: int = 64
    max_header_line: int = 8 * 1024
    max_bytes_before_connect: int = 16 * 1024


class Parser:
    """
    Turn a byte stream into STOMP frames.

    Args:
        limits: Bounds enforced while parsing.
        version: Negotiated STOMP version; decides header unescaping.
            Set :attr:`version` once the session is connected.

    Attributes:
        trim_values: Strip white space around header values, for STOMP 1.0
            sessions: 1.0 says nothing about it and its clients pad values
            (``ack: auto``); 1.1 and 1.2 keep values as they are.

    """

    def __init__(self, limits: Limits | None = None, version: str = "1.0") -> None:
        self.limits = limits or Limits()
        self.version = version
        self.trim_values = False
        self._buffer = bytearray()
        self._frame_start = 0
        self._scan = 0  # first offset not yet searched for the awaited delimiter
        self._line = 0  # start of the line being read
        self._command: Command | None = None
        self._headers: list[tuple[str, str]] = []
        self._body_start = -1
        self._content_length: int | None = None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed by a complete frame."""
        return len(self._buffer) - self._frame_start

    def feed(self, data: bytes) -> Iterator[Frame | HeartBeat]:
        """
        Add ``data`` and yield every event it completes.

        Raises:
            MalformedFrame: Bytes that do not form a frame.
            LimitExceeded: A frame over one of the :class:`Limits`.

        """
        self._buffer += data
        return self._events()

    def _events(self) -> Iterator[Frame | HeartBeat]:
        while True:
            event = self._read_head() if self._body_start < 0 else self._read_body()
            if event is None:
                self._compact()
                return
            yield event

    def _compact(self) -> None:
        if self._frame_start:
            del self._buffer[: self._frame_start]
            self._scan -= self._frame_start
            self._line -= self._frame_start
            if self._body_start >= 0:
                self._body_start -= self._frame_start
            self._frame_start = 0

    def _next_line(self) -> bytes | None:
        """Return the next line without its EOL, or None if incomplete."""
        end = self._buffer.find(b"\n", self._scan)
        self._scan = len(self._buffer) if end < 0 else end + 1
        if (len(self._buffer) if end < 0 else end) - self._line > self.limits.max_header_line:
            raise LimitExceeded(
                "header line too long",
                details=f"a line is over {self.limits.max_header_line} bytes",
            )
        self._check_frame_size(self._scan)
        if end < 0:
            return None
        line = bytes(self._buffer[self._line : end])
        self._line = end + 1
        # STOMP 1.2 §Augmented BNF: EOL = [CR] LF
        return line[:-1] if line.endswith(b"\r") else line

    def _read_head(self) -> Frame | HeartBeat | None:
        while True:
            line = self._next_line()
            if line is None:
                return None
            if self._command is None:
                if not line:
                    # STOMP 1.2 §Heart-beating: EOLs between frames are heart-beats.
                    self._frame_start = self._line
                    return _HEARTBEAT
                self._command = self._parse_command(line)
            elif line:
                self._add_header(line)
            else:
                self._body_start = self._line
                self._content_length = self._parse_content_length()
                return self._read_body()

    def _parse_command(self, line: bytes) -> Command:
        command = _COMMANDS.get(line)
        if command is None:
            shown = line[:40].decode("utf-8", "backslashreplace")
            raise MalformedFrame("unknown command", details=f"unknown command {shown!r}")
        return command

    def _add_header(self, line: bytes) -> None:
        if len(self._headers) >= self.limits.max_headers:
            raise LimitExceeded(
                "too many headers",
                details=f"a frame may carry at most {self.limits.max_headers} headers",
            )
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedFrame(
                "invalid UTF-8", details="header lines must be valid UTF-8"
            ) from None
        if "\0" in text:
            # A NUL ends a frame for every peer: echoed in a RECEIPT or
            # MESSAGE it would start a forged frame, so no version takes it.
            raise MalformedFrame("malformed header", details="a header may not contain NUL")
        name, colon, value = text.partition(":")
        if not colon or not name:
            shown = text[:40]
            raise MalformedFrame("malformed header", details=f"no header name in {shown!r}")
        assert self._command is not None
        if escapes_headers(self._command, self.version):
            name = unescape(name, self.version)
            value = unescape(value, self.version)
        elif self.trim_values:
            value = value.strip()
        self._headers.append((name, value))

    def _parse_content_length(self) -> int | None:
        # STOMP 1.2 §Repeated Header Entries: only the first occurrence counts.
        value = next((v for k, v in self._headers if k == "content-length"), None)
        if value is None:
            return None
        if not value.isascii() or not value.isdigit():
            raise MalformedFrame(
                "invalid content-length",
                details=f"content-length must be a non-negative integer, not {value[:40]!r}",
            )
        # Refuse before buffering the body (and before int() of a huge number).
        digits = value.lstrip("0")
        if len(digits) > len(str(self.limits.max_frame_size)):
            self._check_frame_size(self._frame_start + self.limits.max_frame_size + 1)
        length = int(digits or "0")
        self._check_frame_size(self._body_start + length + 1)
        return length

    def _check_frame_size(self, end: int) -> None:
        if end - self._frame_start > self.limits.max_frame_size:
            raise LimitExceeded(
                "frame too large",
                details=f"frames are limited to {self.limits.max_frame_size} bytes",
            )

    def _read_body(self) -> Frame | None:
        if self._content_length is not None:
            end = self._body_start + self._content_length
            if len(self._buffer) <= end:
                return None
            if self._buffer[end] != 0:
                raise MalformedFrame(
                    "missing NUL",
                    details="the body must be followed by a NUL octet after content-length bytes",
                )
        else:
            end = self._buffer.find(b"\0", max(self._scan, self._body_start))
            if end < 0:
                self._scan = len(self._buffer)
                self._check_frame_size(self._scan)
                return None
            self._check_frame_size(end + 1)
        return self._finish(end)

    def _finish(self, end: int) -> Frame:
        assert self._command is not None
        frame = Frame(
            self._command, tuple(self._headers), bytes(self._buffer[self._body_start : end])
        )
        self._frame_start = self._scan = self._line = end + 1
        self._command = None
        self._headers = []
        self._body_start = -1
        self._content_length = None
        return frame
