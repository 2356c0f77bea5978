"""
What the fan-out spends per record aiokafka hands it: skipped by its key, read
for a room with no local subscriber (what each such record cost before records
were skipped by key), delivered to one subscriber (no socket). In-process, no
broker; aiokafka's own fetching and decoding is not in these figures (the
cluster scenario's ``ceiling`` step has the whole).

    .venv/bin/python -P bench/record_costs.py [RECORDS]
"""

from __future__ import annotations

import json
import sys
import time
import zoneinfo
from typing import Any

from aiokafka import ConsumerRecord

from gateway.chat import ChatService
from gateway.recovery import RecentMessages
from gateway.registry import Subscription, SubscriptionRegistry
from gateway.routing import Router
from kafka_bridge.kafka import KafkaBus, KafkaSettings
from persistence import ChatMessage


def record_costs(count: int) -> dict[str, Any]:
    """
    Microseconds the fan-out spends per record aiokafka hands it (aiokafka's own
    fetch and decoding excluded): skipped by key, read for no subscriber, delivered.
    """
    bus = KafkaBus(KafkaSettings(bootstrap="unused:9092"))
    registry = SubscriptionRegistry()
    router = Router("/pub", ("/sub",), allow_broker_send=False)
    # The bus's only listener, as with MongoDB (whose persister reads as a consumer group).
    ChatService(
        bus,
        registry,
        router,
        zone=zoneinfo.ZoneInfo("UTC"),
        max_message_length=1000,
        recent=RecentMessages(10_000),
    )

    def records(room: int) -> list[ConsumerRecord[bytes, bytes]]:
        value = ChatMessage(
            id="0" * 24,
            chat_room_id=room,
            member_id=1,
            nickname="bench",
            message="x" * 100,
            create_at="2026-12-06T21:00:00",
        ).to_json()
        return [
            ConsumerRecord("chat", 0, n, 0, 0, str(room).encode(), value, None, 2, len(value), [])
            for n in range(count)
        ]

    def per_record(batch: list[ConsumerRecord[bytes, bytes]]) -> float:
        started = time.process_time()
        for start in range(0, len(batch), 1000):  # the fan-out's batches
            bus._hand_on(batch[start : start + 1000])
        return round(1e6 * (time.process_time() - started) / len(batch), 3)

    skipped = per_record(records(1))
    bus.watch("2")  # what each record cost before the skip: read, then no subscriber
    unsubscribed = per_record(records(2))
    bus.watch("3")
    registry.add(_subscription(router.room_destination(3)))
    delivered = per_record(records(3))
    return {
        "scenario": "cluster",
        "step": "record-costs",
        "records": count,
        "us_per_skipped": skipped,
        "us_per_unsubscribed_read": unsubscribed,
        "us_per_delivered": delivered,
    }


class _Sink:
    """A subscriber that takes MESSAGEs and drops them (no socket)."""

    def deliver(self, subscription: Any, template: Any) -> None:
        return None


def _subscription(destination: str) -> Subscription:
    return Subscription(session=_Sink(), id="0", destination=destination, ack_mode="auto", head=b"")


if __name__ == "__main__":
    print(json.dumps(record_costs(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)))
