"""
The chat path, in one place: SEND -> chat message -> bus -> fan-out, and bus -> store.
"""

from __future__ import annotations

import logging
import time
import zoneinfo
from collections.abc import Awaitable
from typing import Any

from gateway.metrics import Metrics
from gateway.security.identity import Member
from gateway.transport.handlers import Refusal
from kafka_bridge import Delivery, MessageBus
from persistence import ChatMessage, InvalidMessage, id_and_room, is_long, load_object
from protocol import MessageTemplate

from .ids import local_date_time, long_id, new_object_id
from .recovery import RecentMessages
from .registry import SubscriptionRegistry
from .routing import Router

__all__ = ["ChatService"]

logger = logging.getLogger(__name__)


class ChatService:
    """
    Turns chat SENDs into messages on the bus, and bus records into MESSAGEs.

    Args:
        bus: Where messages travel between instances.
        registry: Local subscriptions, for the fan-out.
        router: Destination names.
        zone: Time zone of ``createAt``.
        max_message_length: Longest message text, in characters (0: no bound).
        max_nickname_length: Longest nickname, in characters.
        recent: The buffer of recent messages kept for recovery.
        metrics: Where publications, deliveries and fan-out latency are counted.

    """

    def __init__(
        self,
        bus: MessageBus,
        registry: SubscriptionRegistry,
        router: Router,
        *,
        zone: zoneinfo.ZoneInfo,
        max_message_length: int,
        max_nickname_length: int,
        recent: RecentMessages,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.bus = bus
        self.registry = registry
        self.router = router
        self.zone = zone
        self.max_message_length = max_message_length
        self.max_nickname_length = max_nickname_length
        self.recent = recent
        # Keyed: the bus may drop records of rooms without a local subscriber unread.
        bus.add_listener(self.fan_out, keyed=True)
        registry.tell(self)

    def occupied(self, destination: str) -> Awaitable[None] | None:
        """A room has a local subscriber: the bus hands on its records (see :class:`Interest`)."""
        room_id = self.router.room_of(destination)
        return None if room_id is None else self.bus.watch(str(room_id))

    def vacated(self, destination: str) -> None:
        """A room's last local subscriber left: its records may be skipped."""
        room_id = self.router.room_of(destination)
        if room_id is not None:
            self.bus.unwatch(str(room_id))

    async def publish(self, message: ChatMessage) -> Awaitable[None] | None:
        """
        Queue ``message`` on the bus, in order; see :meth:`MessageBus.publish`.

        Raises:
            Refusal: ``message`` cannot be encoded (a lone surrogate).
            PublishError: The bus did not take it.

        """
        try:
            value = message.to_json()
        except InvalidMessage as exc:
            raise Refusal(f"message {exc}") from None
        acknowledged = await self.bus.publish(str(message.chat_room_id), value)
        if acknowledged is None:
            self.metrics.messages_published += 1
            return None
        return self._count_published(acknowledged)

    async def _count_published(self, acknowledged: Awaitable[None]) -> None:
        await acknowledged
        self.metrics.messages_published += 1

    def compose(self, room_id: int, body: bytes, member: Member | None = None) -> ChatMessage:
        """
        Build the chat message a SEND's JSON body asks for.

        With an authenticated ``member``, ``memberId`` (and ``nickname`` when
        the member has one) come from it, never from the body: the body may
        omit ``memberId`` but not name another member.

        Raises:
            Refusal: The body is not a valid chat message.

        """
        fields = _json_object(body)
        if member is not None:
            fields = _as_member(fields, member)
        text = _optional_str(fields, "message")
        file_id = fields.get("fileId")
        if file_id is not None and (
            isinstance(file_id, bool)
            or not isinstance(file_id, int | str)
            or (isinstance(file_id, int) and not is_long(file_id))
        ):
            raise Refusal("fileId must be a 64-bit integer or a string")
        file_name = _optional_str(fields, "fileName")
        if text is None and file_id is None:
            raise Refusal("a chat message needs message, or fileId and fileName")
        if self.max_message_length and text is not None and len(text) > self.max_message_length:
            raise Refusal(f"message is longer than {self.max_message_length} characters")
        member_id = _member_id(fields)
        nickname = _required_str(fields, "nickname")
        if len(nickname) > self.max_nickname_length:
            raise Refusal(f"nickname is longer than {self.max_nickname_length} characters")
        now_ns = time.time_ns()
        return ChatMessage(
            id=new_object_id(now_ns / 1e9),
            chat_room_id=room_id,
            member_id=member_id,
            nickname=nickname,
            message=text,
            file_id=file_id,
            file_name=file_name,
            create_at=local_date_time(now_ns, self.zone),
        )

    def fan_out(self, delivery: Delivery) -> None:
        """Deliver a bus record to the local subscribers of its room."""
        head = id_and_room(delivery.value) or self._parse_head(delivery)
        if head is None:
            self.recent.passed(delivery)
            return
        message_id, room_id = head
        self.recent.add(message_id, room_id, delivery)
        destination = self.router.room_destination(room_id)
        subscriptions = self.registry.subscribers(destination)
        if not subscriptions:
            return
        template = _message_template(
            destination, message_id, delivery.partition, delivery.offset, delivery.value
        )
        delivered = 0
        for subscription in subscriptions:
            if delivery.offset <= subscription.floor:
                continue  # recovered already
            if subscription.backlog is not None:
                subscription.backlog.append((template, delivery.offset))
                continue
            subscription.session.deliver(subscription, template)
            delivered += 1
        self.metrics.messages_delivered += delivered
        if delivery.timestamp:
            # Clocks of instances may differ by a little: a negative latency counts as none.
            self.metrics.fanout_latency.observe(max(0.0, time.time() - delivery.timestamp))

    def _parse_head(self, delivery: Delivery) -> tuple[str, int] | None:
        """The id and room of a record in another shape than ours; None if it is no message."""
        try:
            # Its id becomes the message-id header: from_json takes only an ObjectId's hex,
            # which no version needs to escape.
            message = ChatMessage.from_json(delivery.value)
        except InvalidMessage as exc:
            logger.warning(
                "skipping record %d:%d (key %r): %s",
                delivery.partition,
                delivery.offset,
                delivery.key,
                exc,
            )
            return None
        return message.id, message.chat_room_id

    def template(self, message: ChatMessage, raw: bytes) -> MessageTemplate:
        """Return the MESSAGE carrying ``message`` (its JSON as ``raw``) to its room."""
        destination = self.router.room_destination(message.chat_room_id)
        return _message_template(destination, message.id, message.partition, message.offset, raw)


def _message_template(
    destination: str, message_id: str, partition: int | None, offset: int | None, raw: bytes
) -> MessageTemplate:
    return MessageTemplate(
        (
            ("destination", destination),
            ("message-id", message_id),
            ("content-type", "application/json"),
            # The record's position on the bus, for recovery after a reconnect.
            ("x-partition", str(partition)),
            ("x-offset", str(offset)),
        ),
        raw,
    )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        return load_object(body)
    except InvalidMessage as exc:
        raise Refusal(f"body is {exc}") from None


def _as_member(fields: dict[str, Any], member: Member) -> dict[str, Any]:
    """Return ``fields`` speaking for ``member``; refuse a body claiming someone else."""
    if "memberId" in fields and _member_id(fields) != member.id:
        raise Refusal("memberId does not match the authenticated member")
    stamped = {**fields, "memberId": member.id}
    if member.nickname is not None:
        stamped["nickname"] = member.nickname
    return stamped


def _member_id(fields: dict[str, Any]) -> int:
    member_id = long_id(fields.get("memberId"))
    if member_id is None:
        raise Refusal("memberId must be a 64-bit integer")
    return member_id


def _required_str(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key)
    if not isinstance(value, str):
        raise Refusal(f"{key} must be a string")
    return value


def _optional_str(fields: dict[str, Any], key: str) -> str | None:
    value = fields.get(key)
    if value is not None and not isinstance(value, str):
        raise Refusal(f"{key} must be a string")
    return value
