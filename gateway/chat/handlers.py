"""
The chat application on the STOMP transport (:mod:`gateway.transport.handlers`).

At CONNECT the client is identified (a token, or ``--member-header``); a
SUBSCRIBE to a room or a chat SEND is checked against room authorization;
a SEND is published to the bus, answered (ping) or relayed to broker
subscribers; a SUBSCRIBE to a room may recover what the client missed;
presence and the connection log follow the session's rooms.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Awaitable, Callable

from gateway.metrics import Metrics
from gateway.security.auth import AuthenticationError, Authenticator
from gateway.security.authorization import RoomAuthorizer
from gateway.security.identity import Member
from gateway.transport.handlers import (
    Action,
    Refusal,
    Session,
    Subscribing,
    Subscription,
    at_once,
)
from kafka_bridge import LogUnavailable, MessageBus, PublishError
from persistence import ChatMessage, ConnectionLog, LastConnect, MessageStore, StoreError
from protocol import Command, Frame, InvalidFrame, MessageTemplate

from .ids import long_id, new_object_id
from .persister import Persister
from .presence import PresenceTracker
from .recovery import NOT_RECOVERED, Recovery, recover
from .registry import SubscriptionRegistry
from .routing import ERRORS_DESTINATION, Router, RoutingError
from .service import ChatService

__all__ = ["RECOVERED_HEADER", "RECOVERY_HEADER", "Chat", "ChatHandlers"]

# A SUBSCRIBE to a room may name the last message the client saw...
RECOVERY_HEADER = "x-last-message-id"
# ...and is told on its RECEIPT and first MESSAGE whether the gap was filled.
RECOVERED_HEADER = "x-recovered"


@dataclasses.dataclass(frozen=True, slots=True)
class Chat:
    """
    What the chat handlers of every session share; call it with a session
    to make that session's handlers.

    Attributes:
        service: Composes, publishes and fans out chat messages.
        router: Tells rooms, broker destinations and the ping from each other.
        registry: Every session's subscriptions.
        presence: Who is in which room.
        connection_log: When members connected and disconnected.
        authenticator: Checks CONNECT tokens (None: no authentication).
        authorizer: Decides room access (None: anyone).
        store: The message history, for recovery.
        bus: The message log, for recovery.
        persister: Tells how far the store has the log, for recovery.
        metrics: What ``/metrics`` shows.
        member_header: The CONNECT header naming the member without a token ("": none).
        recovery_timeout: Seconds a recovery may take before it gives up.

    """

    service: ChatService
    router: Router
    registry: SubscriptionRegistry
    presence: PresenceTracker
    connection_log: ConnectionLog
    authenticator: Authenticator | None
    authorizer: RoomAuthorizer | None
    store: MessageStore
    bus: MessageBus
    persister: Persister
    metrics: Metrics
    member_header: str
    recovery_timeout: float

    def __call__(self, session: Session) -> ChatHandlers:
        return ChatHandlers(self, session)


class ChatHandlers:
    """The chat side of one session (:class:`gateway.transport.handlers.Handlers`)."""

    __slots__ = ("_chat", "member", "session")

    def __init__(self, chat: Chat, session: Session) -> None:
        self._chat = chat
        self.session = session
        # Set on CONNECT when the session is identified (token or header).
        self.member: Member | None = None

    # Connecting.

    def on_connect(self, frame: Frame) -> None:
        """Identify the client: a token names the member before the header does."""
        self.member = self._authenticate(frame) or self._member_from_header(frame)

    def _authenticate(self, frame: Frame) -> Member | None:
        """Return the member the CONNECT's token names (None without authentication)."""
        authenticator = self._chat.authenticator
        if authenticator is None:
            return None
        try:
            # STOMP 1.2 §Repeated Header Entries: the first occurrence wins.
            return authenticator.authenticate(dict(reversed(frame.headers)))
        except AuthenticationError as exc:
            # STOMP 1.2 §ERROR: the server then MUST close the connection.
            raise InvalidFrame("authentication failed", details=str(exc)) from None

    def _member_from_header(self, frame: Frame) -> Member | None:
        """The member ``--member-header`` names, when set and sent."""
        name = self._chat.member_header
        value = frame.get(name) if name else None
        if value is None:
            return None
        # A member id's rule, in at most 18 digits (the header's bound).
        member_id = long_id(value) if len(value) <= 18 else None
        if member_id is None:
            raise InvalidFrame("invalid member", details=f"{name} must be a member id (an integer)")
        return Member(member_id)

    def on_connected(self) -> None:
        if self.member is not None:
            self._log_connection()

    def on_disconnect(self) -> None:
        if self.member is not None:
            self._chat.presence.closed(self.session)
            self._log_connection()

    def _log_connection(self) -> None:
        """Record this member's connect or disconnect, now (written behind)."""
        assert self.member is not None
        record = LastConnect(self.member.id, self.session.id, time.time_ns())
        self._chat.connection_log.record(record)

    async def authorize(self, frame: Frame) -> None:
        """
        Refuse a SUBSCRIBE or chat SEND to a room the member may not use.

        Raises:
            Refusal: Room authorization denies it.

        """
        authorizer = self._chat.authorizer
        if authorizer is None or self.member is None:
            return
        room_id = self._room_of(frame)
        if room_id is not None and not await authorizer.allowed(self.member, room_id):
            raise Refusal(f"not a member of room {room_id}")

    def _room_of(self, frame: Frame) -> int | None:
        router = self._chat.router
        destination = frame.get("destination", "")
        if frame.command is Command.SUBSCRIBE:
            return router.room_of(destination)
        if frame.command is Command.SEND:
            route = router.route_send(destination)  # checked by on_send already
            return route.room_id if route.kind == "chat" else None
        return None

    # Sending.

    def on_send(self, frame: Frame) -> Action:
        chat = self._chat
        destination = frame.get("destination", "")
        try:
            route = chat.router.route_send(destination)
        except RoutingError as exc:
            raise Refusal(str(exc)) from None
        if route.kind == "chat":
            message = chat.service.compose(route.room_id, frame.body, self.member)
            return functools.partial(self._publish, message)
        if route.kind == "ping":
            return at_once(self._tell, chat.router.pong_destination, "pong")
        return at_once(self._relay, frame, destination)

    async def _publish(self, message: ChatMessage) -> Awaitable[None] | None:
        try:
            acknowledged = await self._chat.service.publish(message)
        except PublishError as exc:
            raise Refusal(f"message not sent: {exc}") from None
        return None if acknowledged is None else _refusing_unsent(acknowledged)

    def _relay(self, frame: Frame, destination: str) -> None:
        """Relay a SEND to a broker destination as-is (``--allow-broker-send``)."""
        skipped = ("receipt", "transaction", "content-length", "message-id", "subscription")
        headers = (("message-id", new_object_id()), *frame.without(*skipped).headers)
        template = MessageTemplate(headers, frame.body)
        for subscription in self._chat.registry.subscribers(destination):
            subscription.session.deliver(subscription, template)

    def on_refused(self, reason: str, receipt: str | None) -> None:
        """Tell the client on its errors destination, Spring's way (see docs/clients.md)."""
        headers = [("message", reason)]
        if receipt is not None:
            headers.append(("receipt-id", receipt))
        self._tell(ERRORS_DESTINATION, reason, *headers)

    def _tell(self, destination: str, text: str, *headers: tuple[str, str]) -> None:
        """Send ``text`` to this session's own subscriptions to ``destination``."""
        template = MessageTemplate(
            (
                ("destination", destination),
                ("message-id", new_object_id()),
                *headers,
                ("content-type", "text/plain;charset=UTF-8"),
            ),
            text.encode(),
        )
        for subscription in self._chat.registry.of(self.session, destination):
            self.session.deliver(subscription, template)

    # Subscribing.

    def on_subscribe(self, frame: Frame) -> Subscribing:
        destination = frame.get("destination", "")
        router = self._chat.router
        try:
            router.check_subscribe(destination)
        except RoutingError as exc:
            raise Refusal(str(exc)) from None
        last_id = frame.get(RECOVERY_HEADER)
        room_id = router.room_of(destination)
        if last_id is None or room_id is None:
            return self._subscribe
        return functools.partial(self._recover, room_id, last_id)

    async def _subscribe(
        self, subscription: Subscription, subscribe: Callable[[], Awaitable[None] | None]
    ) -> Awaitable[None] | None:
        """Make ``subscription`` live; return what its RECEIPT waits for (the bus, its room)."""
        live = subscribe()
        if self.member is not None:
            self._chat.presence.subscribed(self.session, self.member.id, subscription.destination)
        return live

    async def _recover(
        self,
        room_id: int,
        last_id: str,
        subscription: Subscription,
        subscribe: Callable[[], Awaitable[None] | None],
    ) -> None:
        """Subscribe, send what the client missed after ``last_id``, then go live."""
        subscription.backlog = []  # live messages wait while the missed ones are read
        live = await self._subscribe(subscription, subscribe)
        if live is not None:
            await live  # the store is read once the bus reads the room
        recovery = await self._recovery(room_id, last_id)
        self._chat.metrics.recovered(recovery.source, len(recovery.messages))
        flag = "true" if recovery.recovered else "false"
        subscription.note = f"{RECOVERED_HEADER}:{flag}\n".encode()
        self.session.receipt_headers(((RECOVERED_HEADER, flag),))
        for message, raw in recovery.messages:
            self.session.deliver(subscription, self._chat.service.template(message, raw))
        subscription.floor = recovery.floor
        backlog, subscription.backlog = subscription.backlog or [], None
        for template, offset in backlog:
            if offset > subscription.floor:
                self.session.deliver(subscription, template)

    async def _recovery(self, room_id: int, last_id: str) -> Recovery:
        """What the client missed, or NOT_RECOVERED when it cannot be told whole in time."""
        chat = self._chat
        try:
            async with asyncio.timeout(chat.recovery_timeout):
                return await recover(
                    chat.store,
                    chat.service.recent,
                    chat.bus,
                    chat.persister.stored_before,
                    room_id,
                    last_id,
                )
        except (StoreError, LogUnavailable, TimeoutError) as exc:
            reason = "recovery timed out" if isinstance(exc, TimeoutError) else str(exc)
            self.session.log.warning("cannot recover room %d: %s", room_id, reason)
            return NOT_RECOVERED

    def on_unsubscribe(self, subscription: Subscription) -> None:
        self._chat.presence.unsubscribed(self.session, subscription.destination)


async def _refusing_unsent(acknowledged: Awaitable[None]) -> None:
    """Await the bus; a message it did not take is refused (see :class:`Refusal`)."""
    try:
        await acknowledged
    except PublishError as exc:
        raise Refusal(f"message not sent: {exc}") from None
