"""Properties of :func:`persistence.batching.retrying`."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import given
from hypothesis import strategies as st

from persistence import StoreError
from persistence.batching import retrying

# Each write attempt succeeds (None) or fails.
outcomes = st.lists(st.sampled_from([None, StoreError("away"), ValueError("bug")]), max_size=30)


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
