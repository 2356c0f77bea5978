"""
The chat application's handlers (:mod:`gateway.chat.handlers`) without a
connection: a recording session stands in for the transport.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest

from gateway.app import Gateway
from gateway.chat.handlers import Chat, ChatHandlers
from gateway.chat.routing import ERRORS_DESTINATION
from gateway.config import Config
from gateway.security.authorization import ClaimAuthorizer
from gateway.security.identity import Member
from gateway.transport.handlers import Refusal, SessionLog, Subscription
from protocol import (
    Command,
    Frame,
    Headers,
    InvalidFrame,
    MessageTemplate,
    Parser,
    message_head,
)


class RecordingSession:
    """The transport's side, as the handlers see it."""

    id = "s1"

    def __init__(self) -> None:
        self.delivered: list[tuple[Subscription, MessageTemplate]] = []
        self.receipt: Headers = ()

    @property
    def log(self) -> SessionLog:
        return SessionLog(logging.getLogger("test"), {"session": self.id, "remote": "test"})

    def deliver(self, subscription: Subscription, template: MessageTemplate) -> None:
        self.delivered.append((subscription, template))

    def receipt_headers(self, headers: Headers) -> None:
        self.receipt += headers


def _chat(**overrides: object) -> Chat:
    gateway = Gateway(Config(**overrides))  # type: ignore[arg-type]
    return Chat(
        service=gateway.chat,
        router=gateway.router,
        registry=gateway.registry,
        presence=gateway.presence,
        connection_log=gateway.connection_log,
        authenticator=gateway.authenticator,
        authorizer=gateway.authorizer,
        store=gateway.store,
        bus=gateway.bus,
        persister=gateway.persister,
        metrics=gateway.metrics,
        member_header=gateway.config.member_header,
        recovery_timeout=gateway.config.recovery_timeout,
    )


def _handlers(chat: Chat) -> tuple[ChatHandlers, RecordingSession]:
    session = RecordingSession()
    return chat(session), session


def _frame(command: Command, *headers: tuple[str, str], body: bytes = b"") -> Frame:
    return Frame(command, headers, body)


def _subscribe(chat: Chat, session: RecordingSession, destination: str) -> Subscription:
    subscription = Subscription(session, "sub", destination, "auto", message_head("sub", "1.2"))
    chat.registry.add(subscription)
    return subscription


def _rendered(subscription: Subscription, template: MessageTemplate) -> Frame:
    [frame] = Parser().feed(template.render(subscription.head, "1.2"))
    assert isinstance(frame, Frame)
    return frame


def test_the_member_header_names_the_member() -> None:
    handlers, _ = _handlers(_chat(member_header="x-member"))
    handlers.on_connect(_frame(Command.CONNECT, ("x-member", "42")))
    assert handlers.member == Member(42)


@pytest.mark.parametrize("value", ["4x", "-1", "", "1" * 19, "４２"])
def test_a_member_header_that_is_no_member_id_refuses_the_connect(value: str) -> None:
    handlers, _ = _handlers(_chat(member_header="x-member"))
    with pytest.raises(InvalidFrame, match="invalid member"):
        handlers.on_connect(_frame(Command.CONNECT, ("x-member", value)))


def test_without_a_member_header_setting_the_header_is_ignored() -> None:
    handlers, _ = _handlers(_chat())
    handlers.on_connect(_frame(Command.CONNECT, ("x-member", "42")))
    assert handlers.member is None


def test_a_send_to_no_destination_of_the_chat_is_refused() -> None:
    handlers, _ = _handlers(_chat())
    with pytest.raises(Refusal, match="unknown destination"):
        handlers.on_send(_frame(Command.SEND, ("destination", "/pub/nowhere")))


async def test_a_ping_is_answered_on_the_sessions_pong_subscription() -> None:
    chat = _chat()
    handlers, session = _handlers(chat)
    pong = _subscribe(chat, session, chat.router.pong_destination)
    action = handlers.on_send(_frame(Command.SEND, ("destination", "/pub/ping")))
    assert await action() is None
    [(subscription, template)] = session.delivered
    assert subscription is pong
    assert _rendered(subscription, template).body == b"pong"


def test_a_refusal_is_told_on_the_errors_queue_with_the_receipt_id() -> None:
    chat = _chat()
    handlers, session = _handlers(chat)
    _subscribe(chat, session, ERRORS_DESTINATION)
    handlers.on_refused("not a member of room 3", "r-7")
    message = _rendered(*session.delivered[0])
    assert (message.get("message"), message.get("receipt-id")) == ("not a member of room 3", "r-7")
    assert message.body == b"not a member of room 3"


async def test_room_authorization_refuses_a_room_the_member_is_not_in() -> None:
    chat = dataclasses.replace(_chat(), authorizer=ClaimAuthorizer())
    handlers, _ = _handlers(chat)
    handlers.member = Member(7, rooms=frozenset({1}))
    await handlers.authorize(_frame(Command.SUBSCRIBE, ("destination", "/sub/chat/1")))
    with pytest.raises(Refusal, match="not a member of room 2"):
        await handlers.authorize(_frame(Command.SUBSCRIBE, ("destination", "/sub/chat/2")))
    with pytest.raises(Refusal, match="not a member of room 2"):
        await handlers.authorize(_frame(Command.SEND, ("destination", "/pub/chat/2")))
