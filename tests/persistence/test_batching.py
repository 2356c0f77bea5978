"""Properties of the write-behind helpers: every item written, in order, once."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import given
from hypothesis import strategies as st

from persistence import StoreError
from persistence.batching import WriteBehind, retrying

# Each step adds an item or lets the writer run; each write attempt succeeds (None) or fails.
steps = st.lists(st.sampled_from(["add", "run"]), max_size=30)
outcomes = st.lists(st.sampled_from([None, StoreError("away"), ValueError("bug")]), max_size=30)


@given(steps=steps, outcomes=outcomes)
def test_write_behind_writes_every_item_once_in_order(
    steps: list[str], outcomes: list[Exception | None]
) -> None:
    written: list[int] = []
    attempts = iter(outcomes)

    async def write(batch: list[int]) -> None:
        if (failure := next(attempts, None)) is not None:
            raise failure
        written.extend(batch)

    async def scenario() -> int:
        queue = WriteBehind(write, "test", backoff=(0, 0))
        queue.start()
        added = 0
        for step in steps:
            if step == "add":
                queue.add(added)
                added += 1
            else:
                await asyncio.sleep(0)
            assert list(queue) == list(range(len(written), added))
        while queue:
            await asyncio.sleep(0)
        await queue.close()
        return added

    added = asyncio.run(scenario())
    assert written == list(range(added))


@given(outcomes=outcomes)
def test_retrying_returns_after_the_first_success(outcomes: list[Exception | None]) -> None:
    attempts = iter(outcomes)
    calls = 0

    async def write() -> None:
        nonlocal calls
        calls += 1
        if (failure := next(attempts, None)) is not None:
            raise failure

    assert asyncio.run(retrying(write, "test", backoff=(0, 0)))
    assert calls == len(list(itertools.takewhile(lambda o: o is not None, outcomes))) + 1


async def test_retrying_gives_up_when_stopping() -> None:
    async def write() -> None:
        raise StoreError("away")

    assert not await retrying(write, "test", backoff=(0, 0), stopping=lambda: True)
