"""
The only code below the ``websockets`` public API (tested with websockets 17;
every check fails safe to the ordinary path if the library's insides change).

An idle connection's only traffic is STOMP heart-beats (STOMP 1.2
§Heart-beating: a beat is one EOL). Through ``websockets`` each beat costs a
frame object, a queue, a future and a wake-up of the reader; here:

* :data:`SERVER_BEAT`: the server's beat as a ready-made WebSocket frame,
  written straight to the transport when nothing else can interleave;
* :func:`client_beat`: recognizes a client's beat as the whole of what one
  read brought (its usual shape: one small masked text frame), when the
  ``websockets`` parser stands between two frames and no fragmented message
  is in progress, so the bytes can be taken away without it noticing
  (:class:`StompWebSocket` lets a taker see each read first).

Also the socket's write buffer (:func:`keeps_up`), how a close came about
(:func:`close_outcome`), the keepalive pings (:func:`stop_keepalive`) and a
request head read once for ``websockets`` (:func:`hand_request`).
"""

from __future__ import annotations

from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from .disconnects import CLIENT_CLOSED, CONNECTION_LOST, SERVER_GOING_AWAY, Disconnect

__all__ = [
    "SERVER_BEAT",
    "StompWebSocket",
    "at_rest",
    "client_beat",
    "close_outcome",
    "hand_request",
    "keeps_up",
    "stop_keepalive",
    "write_server_beat",
]

# RFC 6455 §5.2: FIN + text opcode, unmasked (§5.1: a server never masks),
# 1-byte payload: the EOL of a STOMP heart-beat.
SERVER_BEAT = b"\x81\x01\n"
_FIN_TEXT = 0x81
_MASKED = 0x80
_EOLS = (b"\n", b"\r\n")
# The generator websockets' frame parser waits in between two frames.
_BETWEEN_FRAMES = StreamReader.at_eof.__code__
# websockets' server parser, and the request parser it delegates to while it
# waits for the request head.
_SERVER_PARSER = ServerProtocol.parse.__code__
_READING_REQUEST = Request.parse.__code__


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


class StompWebSocket(ServerConnection):
    """A ``websockets`` server connection whose reads :attr:`beats` may take first."""

    # Set by the STOMP connection once client heart-beats are negotiated:
    # takes what one read brought when it is only a client heart-beat.
    beats: Callable[[bytes], bool] | None = None

    def data_received(self, data: bytes) -> None:
        if self.beats is None or not self.beats(data):
            super().data_received(data)


def keeps_up(websocket: ServerConnection) -> bool:
    """Whether the socket's write buffer is under its high-water mark."""
    transport = websocket.transport
    return transport.get_write_buffer_size() < transport.get_write_buffer_limits()[1]


def close_outcome(websocket: ServerConnection) -> tuple[Disconnect, str]:
    """
    The code and reason of a close the gateway did not ask for, and who
    started it (RFC 6455 §7.1.5): ``websockets`` itself (1009 message too
    big, 1007 invalid UTF-8, 1011 keepalive timeout), ``gateway``, or the
    ``client``. A connection still open with no close frame exchanged is the
    gateway's to close, going away: never with 1006 (RFC 6455 §7.4.1).
    """
    protocol = websocket.protocol
    sent, received = protocol.close_sent, protocol.close_rcvd
    if sent is not None and (received is None or not protocol.close_rcvd_then_sent):
        return Disconnect(sent.code, sent.reason), "gateway"
    if received is not None:
        return Disconnect(received.code, received.reason or CLIENT_CLOSED.reason), "client"
    if protocol.state is State.OPEN:
        return SERVER_GOING_AWAY, "gateway"
    return CONNECTION_LOST, "client"


def stop_keepalive(websocket: ServerConnection) -> None:
    """Stop the WebSocket pings: the client's heart-beats tell when it is gone."""
    if (keepalive := websocket.keepalive_task) is not None:
        keepalive.cancel()
        # Dropped too: a cancelled task keeps its exception, traceback and frames.
        websocket.keepalive_task = None


def hand_request(websocket: ServerConnection, request: Request) -> bool:
    """
    Give ``websockets`` a request head read already, as its server parser
    does once it has read one: the request is its first event, and the frame
    parser takes over the bytes that follow. False, handing nothing, unless
    that parser waits for a request with nothing read yet.

    The caller then feeds what followed the head (``data_received``), which
    also makes ``websockets`` take the request.
    """
    protocol = websocket.protocol
    parser = getattr(protocol, "parser", None)
    if (
        protocol.state is not State.CONNECTING
        or getattr(parser, "gi_code", None) is not _SERVER_PARSER
        or getattr(getattr(parser, "gi_yieldfrom", None), "gi_code", None) is not _READING_REQUEST
        or protocol.reader.buffer
        or protocol.events
    ):
        return False
    protocol.events.append(request)
    protocol.parser = Protocol.parse(protocol)
    next(protocol.parser)  # start the coroutine, as Protocol.__init__ does
    return True
