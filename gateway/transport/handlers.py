"""
The application protocol: what the transport asks of the application.

The transport speaks STOMP over WebSocket and keeps each session's
subscriptions and acks; the application decides who may connect, what a
SEND does, which destinations exist and what a new subscription is sent
first. :class:`StompConnection <gateway.transport.connection.StompConnection>`
makes one :class:`Handlers` per connection (with the factory it is given)
and calls it as frames arrive; the handlers see the connection as a
:class:`Session`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Hashable, MutableMapping
from typing import Any, Protocol

import protocol
from protocol import Frame, Headers, MessageTemplate

__all__ = [
    "Action",
    "Handlers",
    "Refusal",
    "Session",
    "SessionLog",
    "Subscriber",
    "Subscribing",
    "Subscription",
    "SubscriptionIndex",
    "at_once",
]


class Refusal(protocol.Refused):
    """
    The application refuses a frame; the session goes on.

    The client is told ``reason`` on its errors destination, with the frame's
    receipt id, instead of a RECEIPT (Spring's way; see docs/clients.md), as
    for the session's own refusals (:class:`protocol.Refused`).
    """


class Subscriber(Hashable, Protocol):
    """A session that receives messages."""

    def deliver(self, subscription: Subscription, template: MessageTemplate) -> None:
        """Queue ``template`` for ``subscription``; must not block."""


@dataclasses.dataclass(eq=False, slots=True)
class Subscription:
    """
    One SUBSCRIBE of one session: the state its session's
    :class:`protocol.Subscriptions` keeps (a :class:`protocol.Subscription`)
    and the gateway's.

    Attributes:
        session: Who subscribed.
        id: The subscription id, unique within the session.
        destination: What was subscribed to.
        ack_mode: ``auto``, ``client`` or ``client-individual``.
        head: The start of every MESSAGE for it (see :func:`protocol.message_head`).
        pending: Ack ids delivered and not yet acknowledged, oldest first.
        floor: Bus offset up to which the subscriber already has the room's
            messages (after a recovery); the fan-out skips those.
        backlog: While a recovery runs, the live messages held back with
            their offsets; None otherwise.
        note: Extra header lines for the next MESSAGE (``x-recovered``).

    """

    session: Subscriber
    id: str
    destination: str
    ack_mode: str
    head: bytes
    pending: dict[str, None] = dataclasses.field(default_factory=dict)
    floor: int = -1
    backlog: list[tuple[MessageTemplate, int]] | None = None
    note: bytes = b""


class SubscriptionIndex(Protocol):
    """The live subscriptions of every session, which the transport keeps up to date."""

    def add(self, subscription: Subscription) -> Awaitable[None] | None:
        """Register ``subscription``; return what to await before it is live."""

    def remove(self, session: Subscriber, subscription_id: str) -> Subscription | None:
        """Remove and return the session's subscription with this id, if live."""

    def remove_session(self, session: Subscriber) -> int:
        """Remove every subscription of ``session``; return how many there were."""


# A frame's effect: it runs, then returns what its RECEIPT still awaits (a
# bus acknowledgement, which may raise Refusal), or None when it is done.
Action = Callable[[], Awaitable[Awaitable[None] | None]]

# How a SUBSCRIBE takes effect: given the subscription and the call that
# makes it live (it returns what to await before it is), do that and
# whatever goes with it; return what the RECEIPT still awaits.
Subscribing = Callable[
    [Subscription, Callable[[], Awaitable[None] | None]], Awaitable[Awaitable[None] | None]
]


def at_once(function: Callable[..., Awaitable[None] | None], *args: Any) -> Action:
    """Wrap a synchronous effect (it may return what the RECEIPT awaits) as an Action."""

    async def action() -> Awaitable[None] | None:
        return function(*args)

    return action


class SessionLog(logging.LoggerAdapter[logging.Logger]):
    """Log lines of one session: ``session <id> ...``, with its structured fields."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        assert self.extra is not None
        kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}
        return f"session {self.extra['session']} {msg}", kwargs

    def event(
        self, level: int, event: str, msg: str, *args: object, reason: str | None = None
    ) -> None:
        """Log ``msg`` as ``event`` (see ``--log-format json``), with the reason if any."""
        fields = {"event": event} if reason is None else {"event": event, "reason": reason}
        self.log(level, msg, *args, extra=fields)


class Session(Subscriber, Protocol):
    """What the application sees of a connection."""

    @property
    def id(self) -> str:
        """The session id, also sent in CONNECTED."""

    @property
    def log(self) -> SessionLog:
        """The session's log: lines start with ``session <id>`` and carry its fields."""

    def receipt_headers(self, headers: Headers) -> None:
        """Add ``headers`` to the RECEIPT of the frame being handled."""


class Handlers(Protocol):
    """
    One connection's application, as Centrifuge's client event handlers.

    Frames a transaction holds reach the handlers at its COMMIT. Every
    effect of a frame (a COMMIT's together) is checked (:meth:`on_connect`,
    :meth:`on_send`, :meth:`on_subscribe`, then :meth:`authorize` for each)
    before any takes place: one refused, none does.
    """

    def on_connect(self, frame: Frame) -> None:
        """
        Identify the client of a CONNECT or STOMP frame.

        Raises:
            ProtocolError: Refused: STOMP 1.2 §ERROR, the server closes.

        """

    def on_connected(self) -> None:
        """CONNECTED was sent."""

    async def authorize(self, frame: Frame) -> None:
        """
        Let the frame take effect, or refuse it.

        Raises:
            Refusal: Not allowed.

        """

    def on_send(self, frame: Frame) -> Action:
        """
        Return what carries out a SEND.

        Raises:
            Refusal: The SEND is refused.

        """

    def on_subscribe(self, frame: Frame) -> Subscribing:
        """
        Return how the SUBSCRIBE, once valid, takes effect.

        Raises:
            Refusal: No such destination.

        """

    def on_unsubscribe(self, subscription: Subscription) -> None:
        """``subscription`` ended (UNSUBSCRIBE, or replaced by another)."""

    def on_refused(self, reason: str, receipt: str | None) -> None:
        """Tell the client a frame was refused (see :class:`Refusal`)."""

    def on_disconnect(self) -> None:
        """The connection ended (once, connected or not); its subscriptions are gone."""
