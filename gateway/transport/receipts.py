"""
Frames whose effect awaits the bus, concluded in the order they came.

STOMP 1.2 §Header receipt: a RECEIPT follows the frame's effect. Publishing
is pipelined (the next frames are read while the bus acknowledges), so a
frame may be done before an earlier one is; its RECEIPT (or the refusal
reported instead) still goes out after the earlier frame's.
:class:`Answering` is how a connection answers a frame once it is concluded.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from gateway.metrics import Metrics
from protocol import Command, Frame, Headers, receipt_for

from . import disconnects
from .disconnects import Disconnect
from .handlers import Handlers, Refusal, SessionLog

__all__ = ["MAX_IN_FLIGHT", "Answering", "Finish", "Receipts"]

# Frames awaiting the bus per connection before it stops reading that client.
MAX_IN_FLIGHT = 1000

# Concludes a frame: the frame, extra RECEIPT headers, and the reason the
# application refused it (reported instead of the RECEIPT) or None.
Finish = Callable[[Frame, Headers, str | None], None]

# A frame waiting: as above, with what it awaits before its reason is final.
_Waiting = tuple[Frame, Headers, list[Awaitable[None]], str | None]


class Receipts:
    """
    The frames of one connection that wait, each until what it awaits is
    done and every earlier frame is concluded; then ``finish`` concludes it.
    An awaitable that raises :class:`~gateway.transport.handlers.Refusal`
    makes the frame refused.
    """

    __slots__ = ("_completer", "_finish", "_waiting")

    def __init__(self, finish: Finish) -> None:
        self._finish = finish
        self._waiting: deque[_Waiting] = deque()
        self._completer: asyncio.Task[None] | None = None  # concludes them, while any

    @property
    def waiting(self) -> bool:
        """Whether a frame waits: a frame added now must wait too."""
        return bool(self._waiting)

    def add(
        self,
        frame: Frame,
        extra: Headers,
        pending: list[Awaitable[None]],
        refused: str | None,
    ) -> asyncio.Task[None] | None:
        """
        Conclude ``frame`` after ``pending`` and the frames added before it.

        Returns:
            With more than :data:`MAX_IN_FLIGHT` frames waiting, the task to
            wait for before reading more from the client; else None.

        """
        self._waiting.append((frame, extra, pending, refused))
        if self._completer is None:
            self._completer = asyncio.create_task(self._complete())
        return self._completer if len(self._waiting) > MAX_IN_FLIGHT else None

    async def settled(self) -> None:
        """Return once every frame added so far is concluded."""
        while (completer := self._completer) is not None and not completer.done():
            await asyncio.wait({completer})

    async def _complete(self) -> None:
        """
        Conclude the waiting frames, in order. One task for all: the frames
        a bus batch acknowledged are concluded in one loop turn, so their
        RECEIPTs leave together.
        """
        waiting = self._waiting
        try:
            while waiting:
                # Left in the queue while awaited, so that a frame with nothing
                # to await that comes meanwhile waits its turn.
                frame, extra, pending, refused = waiting[0]
                for done in pending:
                    try:
                        await done
                    except Refusal as exc:
                        refused = refused or exc.reason
                waiting.popleft()
                self._finish(frame, extra, refused)
        finally:
            self._completer = None


class _Connection(Protocol):
    """What answering needs of its connection."""

    remote: str
    _handlers: Handlers
    _metrics: Metrics

    @property
    def log(self) -> SessionLog: ...

    def close(self, disconnect: Disconnect, by: str = ...) -> None: ...

    def _send(self, frame: Frame) -> None: ...

    def _conclude(self, frame: Frame, extra: Headers) -> None: ...

    def _report(self, reason: str, frame: Frame) -> None: ...


class Answering:
    """The answers of :class:`gateway.transport.connection.StompConnection` (its :data:`Finish`)."""

    __slots__ = ()

    def _finish_frame(self: _Connection, frame: Frame, extra: Headers, refused: str | None) -> None:
        """The frame's effect is done, or was refused: tell the client, in the frames' order."""
        if refused is None:
            self._conclude(frame, extra)
        else:
            self._report(refused, frame)

    def _conclude(self: _Connection, frame: Frame, extra: Headers) -> None:
        """The frame's effect is done: RECEIPT it, and close after DISCONNECT."""
        # STOMP 1.2 §Header receipt: the RECEIPT follows the frame's effect.
        if (answer := receipt_for(frame, extra)) is not None:
            self._send(answer)
        if frame.command is Command.DISCONNECT:
            self.close(disconnects.CLIENT_DISCONNECTED, by="client")

    def _report(self: _Connection, reason: str, frame: Frame) -> None:
        """The application refused the frame: tell the client, Spring's way (docs/clients.md)."""
        self._metrics.error(reason)
        self.log.event(
            logging.INFO,
            "rejected",
            "rejected %s remote=%s: %s",
            frame.command.value,
            self.remote,
            reason,
            reason=reason,
        )
        self._handlers.on_refused(reason, frame.get("receipt"))
