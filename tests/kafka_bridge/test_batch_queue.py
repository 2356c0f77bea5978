"""Properties of :class:`kafka_bridge.batch_queue.BatchQueue`: each delivery handed on, in order."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from kafka_bridge import Delivery
from kafka_bridge.batch_queue import BatchQueue

# Each step adds a delivery, lets the loop run, or lets a pending batch finish.
steps = st.lists(st.sampled_from(["add", "run", "finish"]), max_size=40)


def delivery(offset: int) -> Delivery:
    return Delivery("1", b"{}", partition=0, offset=offset, timestamp=0.0)


@given(steps=steps, close_early=st.booleans())
def test_hands_every_delivery_on_once_in_order(steps: list[str], close_early: bool) -> None:
    handed: list[int] = []

    async def scenario() -> int:
        done = asyncio.Event()

        async def handler(batch: list[Delivery]) -> None:
            await done.wait()
            done.clear()
            handed.extend(d.offset for d in batch)

        queue = BatchQueue(handler, "test")
        queue.start()
        added = 0
        for step in steps:
            if step == "add":
                queue.add(delivery(added))
                added += 1
            elif step == "finish":
                done.set()
            await asyncio.sleep(0)
            assert [d.offset for d in queue] == list(range(len(handed), added))
            assert len(queue) == added - len(handed)
        done.set()
        if not close_early:
            while queue:
                done.set()
                await asyncio.sleep(0)
        closing = asyncio.ensure_future(queue.close())
        while not closing.done():  # close() hands on what waits, a batch cut short included
            done.set()
            await asyncio.sleep(0)
        return added

    added = asyncio.run(scenario())
    if close_early:  # a batch cut short by close() is handed on again: at least once
        assert list(dict.fromkeys(handed)) == list(range(added))
    else:
        assert handed == list(range(added))
