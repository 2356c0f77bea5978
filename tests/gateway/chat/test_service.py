"""Unit tests for :mod:`gateway.chat.service`: ids, timestamps, message composition and fan-out."""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import re
import time
import zoneinfo
from typing import Any

import pytest

from gateway.chat.recovery import RecentMessages
from gateway.chat.registry import SubscriptionRegistry
from gateway.chat.routing import Router
from gateway.chat.service import ChatService
from gateway.transport.handlers import Refusal, Subscription
from kafka_bridge import Delivery, InMemoryBus
from persistence import ChatMessage
from protocol import Frame, MessageTemplate, Parser, message_head

SEOUL = zoneinfo.ZoneInfo("Asia/Seoul")
_OBJECT_ID = re.compile(r"[0-9a-f]{24}")
_LOCAL = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?")


# compose


@pytest.fixture
def service() -> ChatService:
    registry = SubscriptionRegistry()
    router = Router("/pub", ("/sub",), allow_broker_send=False)
    return ChatService(
        InMemoryBus(),
        registry,
        router,
        zone=SEOUL,
        max_message_length=5,
        max_nickname_length=20,
        recent=RecentMessages(100),
    )


def body(**fields: Any) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


def test_compose_text_message(service: ChatService) -> None:
    message = service.compose(4, body(memberId=7, nickname="헨헨", message="안녕"))
    assert message.chat_room_id == 4
    assert message.member_id == 7
    assert message.nickname == "헨헨"
    assert message.message == "안녕"
    assert message.file_id is None
    assert message.file_name is None
    assert _OBJECT_ID.fullmatch(message.id)
    assert _LOCAL.fullmatch(message.create_at)
    created = datetime.datetime.fromisoformat(message.create_at[:19]).replace(tzinfo=SEOUL)
    assert abs(created.timestamp() - time.time()) < 5


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"memberId": "12", "nickname": "n", "message": "m"}, {"member_id": 12}),
        (
            {"memberId": 1, "nickname": "n", "fileId": 5, "fileName": "a.png"},
            {"file_id": 5, "file_name": "a.png", "message": None},
        ),
        ({"memberId": 1, "nickname": "n", "fileId": "abc"}, {"file_id": "abc", "file_name": None}),
        ({"memberId": 1, "nickname": "n", "message": "m", "fileId": None}, {"file_id": None}),
        ({"memberId": 1, "nickname": "", "message": ""}, {"message": "", "nickname": ""}),
        ({"memberId": 1, "nickname": "n", "message": "12345"}, {"message": "12345"}),
        ({"memberId": 1, "nickname": "n", "message": "😀😀😀😀😀"}, {"message": "😀😀😀😀😀"}),
        ({"memberId": -3, "nickname": "n", "message": "m", "extra": [1]}, {"member_id": -3}),
        (
            {"memberId": 1, "nickname": "n", "message": "m", "chatRoomId": 99, "id": "x"},
            {"chat_room_id": 4},
        ),
    ],
)
def test_compose_accepts(
    service: ChatService, fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    message = service.compose(4, body(**fields))
    for name, value in expected.items():
        assert getattr(message, name) == value


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "JSON"),
        (b"{", "JSON"),
        (b"\xff\xfe{}", "JSON"),
        (b"[]", "object"),
        (b"null", "object"),
        (b"42", "object"),
        (body(nickname="n", message="m"), "memberId"),
        (body(memberId=None, nickname="n", message="m"), "memberId"),
        (body(memberId=True, nickname="n", message="m"), "memberId"),
        (body(memberId=1.0, nickname="n", message="m"), "memberId"),
        (body(memberId="12a", nickname="n", message="m"), "memberId"),
        (body(memberId="-1", nickname="n", message="m"), "memberId"),
        (body(memberId="１", nickname="n", message="m"), "memberId"),
        (body(memberId=1, message="m"), "nickname"),
        (body(memberId=1, nickname=3, message="m"), "nickname"),
        (body(memberId=1, nickname="n", message=3), "message"),
        (body(memberId=1, nickname="n"), "message"),
        (body(memberId=1, nickname="n", message=None, fileId=None), "message"),
        (body(memberId=1, nickname="n", fileId=True), "fileId"),
        (body(memberId=1, nickname="n", fileId=1.5), "fileId"),
        (body(memberId=1, nickname="n", fileId=[1]), "fileId"),
        # BSON (and the seed's Java long) stop at 64 bits: larger would stall the persister.
        (body(memberId=2**63, nickname="n", message="m"), "memberId must be a 64-bit"),
        (body(memberId=str(2**64), nickname="n", message="m"), "memberId must be a 64-bit"),
        (body(memberId=1, nickname="n", fileId=-(2**63) - 1), "fileId must be a 64-bit"),
        (body(memberId=1, nickname="n", fileId=1, fileName=2), "fileName"),
        (body(memberId=1, nickname="n", message="123456"), "longer than 5"),
    ],
)
def test_compose_refuses(service: ChatService, raw: bytes, reason: str) -> None:
    with pytest.raises(Refusal, match=reason) as info:
        service.compose(1, raw)
    assert info.value.reason == str(info.value)


# send and fan-out


class FakeSession:
    def __init__(self) -> None:
        self.delivered: list[tuple[Subscription, MessageTemplate]] = []

    def deliver(self, subscription: Subscription, template: MessageTemplate) -> None:
        self.delivered.append((subscription, template))


def subscribe(service: ChatService, destination: str) -> tuple[FakeSession, Subscription]:
    session = FakeSession()
    subscription = Subscription(
        session=session,
        id="s",
        destination=destination,
        ack_mode="auto",
        head=message_head("s", "1.2"),
    )
    service.registry.add(subscription)
    return session, subscription


async def test_send_publishes_and_fans_out(service: ChatService) -> None:
    deliveries: list[Delivery] = []
    service.bus.add_listener(deliveries.append)
    in_room, subscription = subscribe(service, "/sub/chat/4")
    elsewhere, _ = subscribe(service, "/sub/chat/5")
    message = service.compose(4, body(memberId=7, nickname="n", message="hi"))
    await service.publish(message)
    assert [(d.key, d.value) for d in deliveries] == [("4", message.to_json())]
    assert elsewhere.delivered == []
    [(delivered_to, template)] = in_room.delivered
    assert delivered_to is subscription
    assert template.message_id == message.id
    assert template.is_text
    [frame] = Parser(version="1.2").feed(template.render(subscription.head, "1.2"))
    assert isinstance(frame, Frame)
    assert frame.headers == (
        ("subscription", "s"),
        ("destination", "/sub/chat/4"),
        ("message-id", message.id),
        ("content-type", "application/json"),
        ("x-partition", "0"),
        ("x-offset", str(deliveries[0].offset)),
        ("content-length", str(len(message.to_json()))),
    )
    assert ChatMessage.from_json(frame.body) == message


async def test_send_refused_publishes_nothing(service: ChatService) -> None:
    deliveries: list[Delivery] = []
    service.bus.add_listener(deliveries.append)
    with pytest.raises(Refusal):
        service.compose(4, b"{}")
    assert deliveries == []


def test_fan_out_skips_invalid_records(
    service: ChatService, caplog: pytest.LogCaptureFixture
) -> None:
    session, _ = subscribe(service, "/sub/chat/4")
    caplog.set_level(logging.WARNING)
    service.fan_out(Delivery("4", b"not json", partition=2, offset=17))
    service.fan_out(Delivery("4", b'{"id": "x"}', partition=2, offset=18))
    assert session.delivered == []
    assert "2:17" in caplog.text
    assert "2:18" in caplog.text


def test_fan_out_routes_by_the_record_room(service: ChatService) -> None:
    # The room comes from the message's chatRoomId, not from the record key.
    session, _ = subscribe(service, "/sub/chat/9")
    in_nine = service.compose(9, body(memberId=1, nickname="n", message="m"))
    in_eight = service.compose(8, body(memberId=1, nickname="n", message="m"))
    service.fan_out(Delivery("whatever", in_nine.to_json(), partition=0, offset=0))
    service.fan_out(Delivery("9", in_eight.to_json(), partition=0, offset=1))
    assert [template.message_id for _, template in session.delivered] == [in_nine.id]


def test_fan_out_reads_other_producers_shapes(service: ChatService) -> None:
    session, _ = subscribe(service, "/sub/chat/9")
    message = service.compose(9, body(memberId=1, nickname="n", message="m"))
    spaced = json.dumps(message.to_dict()).encode()
    service.fan_out(Delivery("9", spaced, partition=0, offset=3))
    [(_, template)] = session.delivered
    assert template.message_id == message.id
    assert service.recent.get(message.id) == dataclasses.replace(message, partition=0, offset=3)
    assert service.recent.after(9, 2) == [(service.recent.get(message.id), spaced)]
    assert service.recent.after(9, 3) == service.recent.after(8, 2) == []
