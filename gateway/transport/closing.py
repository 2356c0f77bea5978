"""
How one connection ends: ERROR then close (STOMP 1.2 §ERROR), the close
itself, and the bookkeeping once the WebSocket is closed (subscriptions
released, the application told once, the end logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from gateway.metrics import Metrics
from protocol import Frame, InvalidFrame, ProtocolError, ServerSession, State, error_frame

from . import disconnects
from .disconnects import Disconnect
from .handlers import Handlers, Session
from .outbound import Outbound
from .shared import Shared

__all__ = ["Closing"]


class _Connection(Session, Protocol):
    """What closing needs of its connection."""

    session: ServerSession
    remote: str
    _closed_by: str
    _handlers: Handlers
    _loop: asyncio.AbstractEventLoop
    _metrics: Metrics
    _outbound: Outbound
    _released: int | None
    _shared: Shared
    _timer: asyncio.TimerHandle | None

    def heart_beat(self, now: float, horizon: float) -> float | None: ...

    def close(self, disconnect: Disconnect, by: str = ...) -> None: ...

    def fail(self, error: ProtocolError) -> None: ...

    def _release(self) -> None: ...

    def _send(self, frame: Frame) -> None: ...

    def _take_beats(self, taker: Callable[[bytes], bool] | None) -> None: ...


class Closing:
    """The closing part of :class:`gateway.transport.connection.StompConnection`."""

    __slots__ = ()
    _closed_by: str  # slots of the connection's
    _released: int | None

    async def _finish(self: _Connection) -> None:
        """Stop the session's timers and beats, release it, close the WebSocket, log the end."""
        if self._timer is not None:
            self._timer.cancel()
        self._shared.heart_beats.cancel(self)
        self._take_beats(None)
        self.session.close()
        self._release()
        await self._outbound.finish(self._shared.settings.shutdown_timeout)
        disconnect = self._outbound.closing
        assert disconnect is not None
        self.log.event(
            logging.INFO,
            "closed",
            "closed remote=%s code=%d reason=%s closed_by=%s subscriptions_removed=%d",
            self.remote,
            disconnect.code,
            disconnect.reason,
            self._closed_by,
            self._released,
            reason=disconnect.reason,
        )

    def close(self: _Connection, disconnect: Disconnect, by: str = "gateway") -> None:
        """
        Write out what is queued, then close the WebSocket; ``by`` tells who
        started the close (``gateway`` or ``client``) for the log.

        Nothing more is delivered, and the session's subscriptions go as soon
        as the current fan-out (which may be iterating over them) is done.
        """
        if self._outbound.closing is None:
            self._closed_by = by
            self._loop.call_soon(self._release)
            self._outbound.close(disconnect)

    def _release(self: _Connection) -> None:
        """Remove the session's subscriptions and tell the application, once."""
        if self._released is None:
            self._released = self._shared.subscriptions.remove_session(self)
            self._handlers.on_disconnect()

    def fail(
        self: _Connection,
        error: ProtocolError,
        disconnect: Callable[[str], Disconnect] = disconnects.protocol_error,
    ) -> None:
        """Send ERROR, then close: STOMP 1.2 §ERROR says the server MUST close."""
        if self._outbound.closing is not None:
            return
        self._metrics.error(error.message)
        self.log.event(
            logging.INFO, "error", "error remote=%s: %s", self.remote, error, reason=error.message
        )
        self._send(error_frame(error))  # the session is closed once its ERROR is sent
        self.close(disconnect(error.message))

    def _slow_consumer(self: _Connection, why: str) -> None:
        """The outbound queue's verdict: close at once."""
        self._metrics.slow_consumer_disconnects += 1
        self.log.event(
            logging.WARNING,
            "slow consumer",
            "slow consumer remote=%s: %s",
            self.remote,
            why,
            reason=why,
        )
        self.session.close()
        self.close(disconnects.slow_consumer(why))

    def _no_connect(self: _Connection) -> None:
        """The connect timeout: no CONNECT came in time."""
        if self.session.state is State.CONNECTING:
            self.fail(InvalidFrame("connect timeout", details="no CONNECT frame in time"))
