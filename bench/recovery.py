"""
Recovery benchmark: a reconnect whose missed messages come from the Kafka log.

Not a test: it asserts nothing about time; it prints one JSON line.

On a fresh topic it publishes an anchor message of room 4 and then
``--missed`` messages of room 4, each followed by ``--others`` records of
room 7 (the same partition), through the gateway's own Kafka bus. Then it
times :func:`gateway.chat.recovery.recover` ``--repeat`` times as a gateway would
run it when the store holds only the anchor and the buffer holds nothing of
the partition: the whole gap is read back from the log (a consumer started,
assigned, fetched, the other room's records skipped by key, the room's
parsed), merged and checked.

Kafka is ``--bootstrap``, else ``$KAFKA_BOOTSTRAP`` (``scripts/kafka-local
start`` prints one).

    .venv/bin/python -P bench/recovery.py [--missed 1000] [--others 0] [--repeat 10]

(``-P``: bench/persistence.py must not shadow the package of that name.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable

from gateway.chat.ids import new_object_id
from gateway.chat.recovery import MAX_RECOVERED, RecentMessages, recover
from kafka_bridge.kafka import KafkaBus, KafkaSettings
from persistence import ChatMessage, InMemoryStore

ROOM, OTHER = 4, 7  # both in partition 1 of 3


def chat(room: int, text: str) -> ChatMessage:
    return ChatMessage(
        id=new_object_id(),
        chat_room_id=room,
        member_id=1,
        nickname="bench",
        message=text,
        create_at="2024-01-01T00:00:00",
    )


async def publish(bus: KafkaBus, missed: int, others: int) -> ChatMessage:
    """Publish the anchor, then the missed messages and the other room's; return the anchor."""
    anchor = chat(ROOM, "anchor")
    pending: list[Awaitable[None] | None] = [await bus.publish(str(ROOM), anchor.to_json())]
    for n in range(missed):
        pending.append(await bus.publish(str(ROOM), chat(ROOM, f"m{n}").to_json()))
        for k in range(others):
            pending.append(await bus.publish(str(OTHER), chat(OTHER, f"o{n}-{k}").to_json()))
    await asyncio.gather(*(p for p in pending if p is not None))
    # A fresh topic: the anchor is the partition's first record.
    return ChatMessage.from_json(anchor.to_json(), partition=1, offset=0)


async def run(bootstrap: str, missed: int, others: int, repeat: int) -> dict[str, object]:
    topic = f"bench-recovery-{uuid.uuid4().hex[:12]}"
    bus = KafkaBus(KafkaSettings(bootstrap=bootstrap, topic=topic))
    await bus.start()
    try:
        anchor = await publish(bus, missed, others)
        # As on a gateway: the fan-out has handed the records on before the reconnect.
        while (bus.fan_out_position(1) or 0) < 1 + missed * (1 + others):
            await asyncio.sleep(0.01)
        store = InMemoryStore()
        await store.save([anchor])

        async def stored_before(partition: int) -> int:
            return 1  # the persister stored the anchor, and nothing after it

        timings, counts, sources = [], set(), set()
        for _ in range(repeat):
            started = time.perf_counter()
            recovery = await recover(store, RecentMessages(0), bus, stored_before, ROOM, anchor.id)
            timings.append((time.perf_counter() - started) * 1000)
            counts.add(len(recovery.messages))
            sources.add(recovery.source)
    finally:
        await bus.close()
    return {
        "scenario": "recovery from the Kafka log",
        "missed": missed,
        "other_records": missed * others,
        "repeat": repeat,
        "recovered": sorted(counts),
        "source": sorted(sources),
        "ms_median": round(statistics.median(timings), 1),
        "ms_min": round(min(timings), 1),
        "ms_max": round(max(timings), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP"))
    parser.add_argument("--missed", type=int, default=1000, help=f"at most {MAX_RECOVERED}")
    parser.add_argument("--others", type=int, default=0, help="other room's records per message")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    if not args.bootstrap:
        parser.error(
            "no Kafka: pass --bootstrap or set KAFKA_BOOTSTRAP (scripts/kafka-local start)"
        )
    result = asyncio.run(run(args.bootstrap, args.missed, args.others, args.repeat))
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["recovered"] == [args.missed] else 1)


if __name__ == "__main__":
    main()
