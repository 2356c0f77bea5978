"""
One connection's side of heart-beating (STOMP 1.2 §Heart-beating): the
monitor agreed at CONNECT, the beats it sends, the client's silence, and the
client's bare beats taken at the socket (see :mod:`gateway.transport.websocket`).
The one timer of every session is :class:`gateway.transport.heartbeats.HeartBeatWheel`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from websockets.asyncio.server import ServerConnection

from gateway.metrics import Metrics
from protocol import HeartBeatMonitor, ServerSession, State

from . import disconnects
from .disconnects import Disconnect
from .framing import Framing
from .handlers import SessionLog
from .outbound import Outbound
from .shared import Shared
from .websocket import StompWebSocket, at_rest, client_beat, stop_keepalive

__all__ = ["HeartBeating"]


class _Connection(Protocol):
    """What heart-beating needs of its connection."""

    session: ServerSession
    websocket: ServerConnection
    framing: Framing
    remote: str
    _holding: bool
    _loop: asyncio.AbstractEventLoop
    _metrics: Metrics
    _monitor: HeartBeatMonitor | None
    _outbound: Outbound
    _shared: Shared

    @property
    def log(self) -> SessionLog: ...

    def close(self, disconnect: Disconnect) -> None: ...

    def heart_beat(self, now: float, horizon: float) -> float | None: ...

    def _take_beats(self, taker: Callable[[bytes], bool] | None) -> None: ...

    def _beat_received(self, data: bytes) -> bool: ...


class HeartBeating:
    """The heart-beat part of :class:`gateway.transport.connection.StompConnection`."""

    __slots__ = ()
    _monitor: HeartBeatMonitor | None  # a slot of the connection's

    def _start_heart_beats(self: _Connection) -> None:
        """Watch and send the heart-beats agreed in CONNECTED."""
        send_ms, receive_ms = self.session.heart_beat
        tolerance = self._shared.heart_beat_policy.tolerance
        keep_alive = send_ms or self.framing.idle_heartbeat_ms
        monitor = HeartBeatMonitor(keep_alive, receive_ms, tolerance, self._loop.time())
        self._monitor = self._outbound.monitor = monitor
        if receive_ms:
            # The client's heart-beats now tell when it is gone (STOMP 1.2
            # §Heart-beating): WebSocket pings would only add work and a task.
            stop_keepalive(self.websocket)
        if (deadline := monitor.next_check()) is not None:
            self._shared.heart_beats.schedule(self, deadline)
        if receive_ms and self.framing.bare_beats:
            self._take_beats(self._beat_received)

    def heart_beat(self: _Connection, now: float, horizon: float) -> float | None:
        """
        Close if the client fell silent, send the beat due before ``horizon``;
        return when to look again (see :class:`gateway.transport.heartbeats.HeartBeatWheel`).
        """
        monitor = self._monitor
        if monitor is None or self._outbound.closing is not None:
            return None
        if self._holding:
            monitor.received(now)  # its data waits unread, see StompConnection._unread
        if monitor.timed_out(now):
            self._metrics.heartbeat_timeouts += 1
            reason = disconnects.HEART_BEAT_TIMEOUT.reason
            self.log.event(
                logging.INFO, reason, "heart-beat timeout remote=%s", self.remote, reason=reason
            )
            self.session.close()
            self.close(disconnects.HEART_BEAT_TIMEOUT)
            return None
        if monitor.send_due(horizon):
            self._outbound.heart_beat(stomp=bool(self.session.heart_beat[0]))
            monitor.sent(now)
        return monitor.next_check()

    def _take_beats(self: _Connection, taker: Callable[[bytes], bool] | None) -> None:
        """Let ``taker`` see each read of the socket first (None: no more)."""
        if isinstance(self.websocket, StompWebSocket):
            self.websocket.beats = taker

    def _beat_received(self: _Connection, data: bytes) -> bool:
        """
        Take ``data``, what one read brought, if it is a client heart-beat
        that nothing else would notice (see :mod:`gateway.transport.websocket`);
        else leave it to the read loop.
        """
        if (
            client_beat(data)
            and self._monitor is not None
            and self.session.state is State.CONNECTED
            and not self.session.parser.buffered  # STOMP 1.2: EOLs between frames only
            and at_rest(self.websocket)
        ):
            self._monitor.received(self._loop.time())
            return True
        return False
