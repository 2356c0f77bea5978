"""
One connection's SUBSCRIBE, UNSUBSCRIBE, ACK and NACK, and the MESSAGEs it is sent.

The session's :class:`protocol.Subscriptions` rules on ids, replacement and
acks; the gateway's subscription index is kept in step with it, and the
application hears of each subscription through its handlers.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable
from typing import Protocol

from gateway.metrics import Metrics
from protocol import (
    Frame,
    LimitExceeded,
    LocalProtocolError,
    MessageTemplate,
    ProtocolError,
    ServerSession,
)
from protocol import Subscription as StompSubscription

from .framing import Kind
from .handlers import Action, Handlers, Session, Subscription, at_once
from .outbound import Outbound
from .shared import Shared

__all__ = ["SubscriptionDispatch"]


class _Connection(Session, Protocol):
    """What subscription dispatch needs of its connection."""

    session: ServerSession
    _handlers: Handlers
    _metrics: Metrics
    _outbound: Outbound
    _shared: Shared

    @property
    def version(self) -> str: ...

    def fail(self, error: ProtocolError) -> None: ...

    def _subscribe(
        self, subscription: Subscription, replaced: tuple[StompSubscription, ...]
    ) -> Awaitable[None] | None: ...

    def _unsubscribe(self, subscription_id: str) -> Subscription | None: ...


class SubscriptionDispatch:
    """The subscription part of :class:`gateway.transport.connection.StompConnection`."""

    __slots__ = ()

    def _prepare_subscribe(self: _Connection, frame: Frame) -> Action:
        # The session refused a live id as the frame arrived; the application
        # judges the destination before the session's subscription rules apply.
        subscribing = self._handlers.on_subscribe(frame)
        admission = self.session.subscriptions.admit(frame)
        subscription = Subscription(
            session=self,
            id=admission.id,
            destination=admission.destination,
            ack_mode=admission.ack_mode,
            head=admission.head,
        )
        subscribe = functools.partial(self._subscribe, subscription, admission.replaces)
        return functools.partial(subscribing, subscription, subscribe)

    def _subscribe(
        self: _Connection, subscription: Subscription, replaced: tuple[StompSubscription, ...]
    ) -> Awaitable[None] | None:
        """Register ``subscription``; return what its RECEIPT waits for (the bus, its room)."""
        for old in replaced:
            self._unsubscribe(old.id)
        self.session.subscriptions.add(subscription)
        return self._shared.subscriptions.add(subscription)

    def _on_unsubscribe(self: _Connection, frame: Frame) -> None:
        subscription_id = self.session.subscriptions.unsubscribe_id(frame)
        if self._unsubscribe(subscription_id) is None:
            # An id replaced by a later SUBSCRIBE to the same destination, or
            # never live: the client's wish (no such subscription) holds, and
            # the session keeps its other subscriptions; a RECEIPT follows.
            self.log.debug("unsubscribed unknown id %r", subscription_id)

    def _unsubscribe(self: _Connection, subscription_id: str) -> Subscription | None:
        subscription = self._shared.subscriptions.remove(self, subscription_id)
        if subscription is not None:
            self.session.subscriptions.remove(subscription_id)
            self._handlers.on_unsubscribe(subscription)
        return subscription

    def _prepare_ack(self: _Connection, frame: Frame) -> Action:
        subscriptions = self.session.subscriptions
        return at_once(subscriptions.acknowledge, subscriptions.check_ack(frame))

    def deliver(self: _Connection, subscription: Subscription, template: MessageTemplate) -> None:
        """Queue a MESSAGE for one of this session's subscriptions."""
        if self._outbound.closing is not None:
            return
        ack = None
        if subscription.ack_mode != "auto":  # the fan-out's common case awaits no ACK
            try:
                ack = self.session.subscriptions.deliver(subscription, template.message_id)
            except LimitExceeded as exc:
                self.fail(exc)
                return
        head = subscription.head
        if subscription.note:
            head, subscription.note = head + subscription.note, b""
        try:
            data = template.render(head, self.version, ack)
        except LocalProtocolError as exc:
            self.log.warning("cannot receive a message: %s", exc)
            return
        self._metrics.messages_sent += 1
        self._outbound.enqueue(data, Kind.TEXT if template.is_text else Kind.BINARY)
