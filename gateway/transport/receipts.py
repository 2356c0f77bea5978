"""
Frames whose effect awaits the bus, concluded in the order they came.

STOMP 1.2 §Header receipt: a RECEIPT follows the frame's effect. Publishing
is pipelined (the next frames are read while the bus acknowledges), so a
frame may be done before an earlier one is; its RECEIPT (or the error
reported instead) still goes out after the earlier frame's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from protocol import Frame, Headers

from .handlers import Refusal

__all__ = ["MAX_IN_FLIGHT", "Receipts"]

# Frames awaiting the bus per connection before it stops reading that client.
MAX_IN_FLIGHT = 1000

# A frame, its receipt, extra RECEIPT headers, what it awaits, and the
# reason the application refused it (reported instead of the RECEIPT).
_Awaiting = tuple[Frame, str | None, Headers, list[Awaitable[None]], str | None]


class Receipts:
    """
    Concludes frames in order: ``conclude`` the done ones, ``refuse`` the others.

    Args:
        conclude: Called with a frame whose effect is done, its receipt and
            extra RECEIPT headers.
        refuse: Called with the reason, the frame and its receipt when the
            application refused the frame, now or while it was awaited
            (an awaitable raised :class:`~gateway.transport.handlers.Refusal`).

    """

    __slots__ = ("_awaiting", "_completer", "_conclude", "_refuse")

    def __init__(
        self,
        conclude: Callable[[Frame, str | None, Headers], None],
        refuse: Callable[[str, Frame, str | None], None],
    ) -> None:
        self._conclude = conclude
        self._refuse = refuse
        # Made on the first frame that waits: idle sessions need none.
        self._awaiting: deque[_Awaiting] | None = None
        self._completer: asyncio.Task[None] | None = None  # concludes them, while any

    def add(
        self,
        frame: Frame,
        receipt: str | None,
        extra: Headers,
        pending: list[Awaitable[None]],
        refused: str | None,
    ) -> asyncio.Task[None] | None:
        """
        Conclude ``frame`` once ``pending`` is done and every earlier frame
        is concluded: at once when nothing waits.

        Returns:
            With more than :data:`MAX_IN_FLIGHT` frames waiting, the task to
            wait for before reading more from the client; else None.

        """
        if not pending and not self._awaiting:
            self._finish(frame, receipt, extra, refused)
            return None
        if self._awaiting is None:
            self._awaiting = deque()
        self._awaiting.append((frame, receipt, extra, pending, refused))
        if self._completer is None:
            self._completer = asyncio.create_task(self._complete())
        return self._completer if len(self._awaiting) > MAX_IN_FLIGHT else None

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
        awaiting = self._awaiting
        assert awaiting is not None
        try:
            while awaiting:
                # Left in the queue while awaited, so that a frame with nothing
                # to await that comes meanwhile waits its turn (see add()).
                frame, receipt, extra, pending, refused = awaiting[0]
                for done in pending:
                    try:
                        await done
                    except Refusal as exc:
                        refused = refused or exc.reason
                awaiting.popleft()
                self._finish(frame, receipt, extra, refused)
        finally:
            self._completer = None

    def _finish(
        self, frame: Frame, receipt: str | None, extra: Headers, refused: str | None
    ) -> None:
        if refused is None:
            self._conclude(frame, receipt, extra)
        else:
            self._refuse(refused, frame, receipt)
