"""
What goes out to one client: a bounded queue, the slow-consumer verdict, the writer.

Queueing never waits, so a fan-out to many clients never waits for one. What
is queued is written once per turn of the event loop (see
:mod:`gateway.transport.flusher`), at once while the socket keeps up, else by
a task of its own that waits for the socket to drain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed

from protocol import HeartBeatMonitor

from .disconnects import Disconnect
from .flusher import Flusher
from .framing import Framing, Kind, Message
from .framing import Outbound as Queued
from .websocket import keeps_up, write_server_beat

__all__ = ["Outbound", "OutboundSettings"]


class OutboundSettings(Protocol):
    """The limits of a client's queue (``--max-outbound-bytes`` and its kin)."""

    @property
    def max_outbound_bytes(self) -> int: ...

    @property
    def outbound_low_water(self) -> int: ...

    @property
    def send_time_limit(self) -> float: ...


class Outbound:
    """
    The outbound queue of one WebSocket and the writer that empties it.

    The queue is bounded: over ``max_outbound_bytes`` the client is judged a
    slow consumer at once; over ``outbound_low_water`` it has
    ``send_time_limit`` seconds to get back under it (Spring's
    ``sendBufferSizeLimit`` and ``sendTimeLimit``). The verdict empties the
    queue, calls ``slow`` (which closes the connection) and closes the
    WebSocket directly, since the writer may be blocked on it.

    Args:
        websocket: Where the messages go.
        framing: How STOMP frames travel in WebSocket messages.
        flusher: Calls :meth:`flush` once per turn of the loop while output is due.
        settings: The queue's limits.
        slow: Told why the client is a slow consumer.

    """

    __slots__ = (
        "_bytes",
        "_closer",
        "_drain_timer",
        "_flush_due",
        "_flusher",
        "_framing",
        "_loop",
        "_low_water",
        "_queue",
        "_settings",
        "_slow",
        "_websocket",
        "_writer",
        "closing",
        "monitor",
    )

    def __init__(
        self,
        websocket: ServerConnection,
        framing: Framing,
        flusher: Flusher,
        settings: OutboundSettings,
        *,
        slow: Callable[[str], None],
    ) -> None:
        self._websocket = websocket
        self._framing = framing
        self._flusher = flusher
        self._settings = settings
        self._slow = slow
        self._loop = asyncio.get_running_loop()
        self._queue: list[Queued] = []
        self._bytes = 0
        self._flush_due = False  # handed to the flusher
        self._writer: asyncio.Task[None] | None = None  # while the socket is backed up, or closing
        self._drain_timer: asyncio.TimerHandle | None = None
        self._closer: asyncio.Task[None] | None = None
        self._low_water = min(settings.outbound_low_water, settings.max_outbound_bytes)
        # Set by close(): the writer closes the WebSocket after what is queued.
        self.closing: Disconnect | None = None
        # Told each time the client is sent something, once heart-beats are agreed.
        self.monitor: HeartBeatMonitor | None = None

    def enqueue(self, data: bytes, kind: Kind) -> None:
        """Queue ``data`` for the writer; never waits."""
        self._queue.append((data, kind))
        self._bytes += len(data)
        self._schedule_flush()
        settings = self._settings
        if self._bytes > settings.max_outbound_bytes:
            self._judge(f"{self._bytes} bytes queued, over {settings.max_outbound_bytes}")
        elif self._bytes > self._low_water and self._drain_timer is None:
            self._drain_timer = self._loop.call_later(settings.send_time_limit, self._check_drained)

    def close(self, disconnect: Disconnect) -> None:
        """Write out what is queued, then close the WebSocket with ``disconnect``."""
        self.closing = disconnect
        self._schedule_flush()

    def heart_beat(self, *, stomp: bool) -> None:
        """
        Send a heart-beat: STOMP's when ``stomp`` (STOMP 1.2 §Heart-beating:
        a single EOL), straight to the socket when nothing else is queued or
        being written; else the transport's own (e.g. SockJS "h").
        """
        if not stomp:
            self.enqueue(b"", Kind.HEARTBEAT)
        elif not (self._framing.bare_beats and self.idle() and write_server_beat(self._websocket)):
            self.enqueue(b"\n", Kind.TEXT)

    def idle(self) -> bool:
        """Whether nothing is queued or being written and the socket keeps up."""
        return self._writer is None and not self._queue and keeps_up(self._websocket)

    async def finish(self, timeout: float) -> None:
        """Flush and close (after :meth:`close`), waiting at most ``timeout`` seconds."""
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        self.flush()  # starts the writer that closes the WebSocket, unless it runs already
        writer = self._writer
        assert writer is not None, "finish() follows close()"
        try:
            await asyncio.wait_for(writer, timeout)
        except (TimeoutError, ConnectionClosed):
            writer.cancel()

    def _check_drained(self) -> None:
        self._drain_timer = None
        if self._bytes > self._low_water and self.closing is None:
            limit = self._settings.send_time_limit
            self._judge(f"{self._bytes} bytes still queued after {limit:g} s")

    def _judge(self, why: str) -> None:
        """The client is a slow consumer: drop its queue and close it now."""
        self._queue = []
        self._bytes = 0
        self._slow(why)
        assert self.closing is not None, "slow() closes the connection"
        closing = self._websocket.close(self.closing.code, self.closing.reason)
        self._closer = self._loop.create_task(closing)

    def _schedule_flush(self) -> None:
        if not self._flush_due and self._writer is None:
            self._flush_due = True
            self._flusher.add(self)

    def flush(self) -> None:
        """
        Write what is queued: at once while the socket keeps up, else from a
        task waiting for it to drain (back-pressure on the queue); then close
        the WebSocket if asked to.
        """
        self._flush_due = False
        if self._writer is not None:
            return  # the writer takes what is queued, or the connection is closed
        messages = self._take()
        for index, (message, text) in enumerate(messages):
            if not keeps_up(self._websocket):
                self._writer = self._loop.create_task(self._write_out(messages[index:]))
                return
            self._write_now(message, text)
        if self.closing is not None:
            self._writer = self._loop.create_task(self._write_out([]))

    def _take(self) -> list[tuple[Message, bool]]:
        """Take the queue, as WebSocket messages; note that the client is sent something."""
        batch, self._queue = self._queue, []
        self._bytes = 0
        if not batch:
            return []
        if self.monitor is not None:
            self.monitor.sent(self._loop.time())
        return self._framing.encode(batch)

    async def _write_out(self, messages: list[tuple[Message, bool]]) -> None:
        """Write ``messages`` and what is queued meanwhile; then close, or leave it to flush()."""
        while messages:
            for message, text in messages:
                await self._write(message, text)
            messages = self._take()
        if self.closing is None:
            self._writer = None
            return
        code, reason = self.closing.code, self.closing.reason
        for message in self._framing.closing(code, reason):
            await self._websocket.send(message)
        await self._websocket.close(code, reason)

    async def _write(self, message: Message, text: bool) -> None:
        """Write one WebSocket message, waiting for the socket to drain if it is backed up."""
        if keeps_up(self._websocket):
            self._write_now(message, text)
        else:
            await self._websocket.send(message, text=text)

    def _write_now(self, message: Message, text: bool) -> None:
        # websockets' own synchronous path: no lock, no context, no await.
        broadcast((self._websocket,), message, text=text)  # a failed write logs a warning
