"""
STOMP heart-beats on the WebSocket wire, below the ``websockets`` API.

An idle connection's only traffic is heart-beats (STOMP 1.2 §Heart-beating:
a beat is one EOL). Through ``websockets`` each beat costs a frame object, a
queue, a future and a wake-up of the reader; with 10,000 clients beating
every 10 s that was most of an idle gateway's CPU. This module, and only it,
reaches below the library's public API (tested with websockets 17; every
check fails safe to the ordinary path if the library's insides change):

* :data:`SERVER_BEAT`: the server's beat as a ready-made WebSocket frame,
  written straight to the transport when nothing else can interleave;
* :func:`client_beat`: recognizes a client's beat as the whole of what one
  read brought (its usual shape: one small masked text frame), when the
  ``websockets`` parser stands between two frames and no fragmented message
  is in progress, so the bytes can be taken away without it noticing.
"""

from __future__ import annotations

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State
from websockets.streams import StreamReader

__all__ = ["SERVER_BEAT", "at_rest", "client_beat", "write_server_beat"]

# RFC 6455 §5.2: FIN + text opcode, unmasked (§5.1: a server never masks),
# 1-byte payload: the EOL of a STOMP heart-beat.
SERVER_BEAT = b"\x81\x01\n"
_FIN_TEXT = 0x81
_MASKED = 0x80
_EOLS = (b"\n", b"\r\n")
# The generator websockets' frame parser waits in between two frames.
_BETWEEN_FRAMES = StreamReader.at_eof.__code__


def write_server_beat(websocket: ServerConnection) -> bool:
    """
    Write a heart-beat frame straight to the transport; False if not now.

    ``websockets`` keeps no state about the data frames it sends (only about
    closing, and fragmented sends, which the gateway never makes), so a whole
    frame written while the connection is open and nothing compresses frames
    (permessage-deflate) reads to the client as one sent with ``send``.
    """
    protocol = websocket.protocol
    if protocol.state is not State.OPEN or protocol.extensions:
        return False
    websocket.transport.write(SERVER_BEAT)
    return True


def client_beat(data: bytes) -> bool:
    """
    Whether ``data`` is exactly one client heart-beat frame (RFC 6455 §5.2).

    FIN set, no RSV bits, text opcode, masked (§5.3: clients mask), a payload
    of 1 or 2 bytes that unmasks to an EOL. Control frames, fragments and
    anything longer go the ordinary way.
    """
    size = len(data)
    if size not in (7, 8) or data[0] != _FIN_TEXT or data[1] != _MASKED | (size - 6):
        return False
    mask, payload = data[2:6], data[6:]
    return bytes(b ^ mask[i] for i, b in enumerate(payload)) in _EOLS


def at_rest(websocket: ServerConnection) -> bool:
    """
    Whether ``websockets`` could drop the next frame unseen: the connection is
    open, without extensions, its parser waits between two frames (not inside
    one) outside a fragmented message, and every message it parsed has been
    taken by the reader, which waits for the next.
    """
    protocol = websocket.protocol
    if protocol.state is not State.OPEN or protocol.extensions:
        return False
    if getattr(_innermost(protocol.parser), "gi_code", None) is not _BETWEEN_FRAMES:
        return False
    messages = websocket.recv_messages
    return (
        protocol.current_size is None  # not inside a fragmented message
        and messages.get_in_progress  # the reader waits...
        and not messages.frames.queue  # ...with nothing to take yet
    )


def _innermost(generator: object) -> object:
    """The generator that ``generator`` delegates to with ``yield from``, all the way down."""
    while (inner := getattr(generator, "gi_yieldfrom", None)) is not None:
        generator = inner
    return generator
