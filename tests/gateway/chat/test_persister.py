"""The persister stores every message the bus carried, whatever the store raised meanwhile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from gateway.chat.persister import Persister
from kafka_bridge import InMemoryBus
from persistence import ChatMessage, InMemoryStore, StoreError


class FlakyStore(InMemoryStore):
    """An in-memory store whose first saves raise what it is given."""

    def __init__(self, failures: list[Exception], *, shared: bool) -> None:
        super().__init__()
        self.failures = failures
        self.shared = shared

    async def save(self, messages: Sequence[ChatMessage]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        await super().save(messages)


def message(number: int) -> ChatMessage:
    return ChatMessage(
        id=f"{number:024x}",
        chat_room_id=1,
        member_id=7,
        nickname="henhen",
        message=f"m{number}",
        create_at="2024-11-03T18:23:45",
    )


async def stored(store: InMemoryStore, persister: Persister) -> list[str | None]:
    while persister.lag:
        await asyncio.sleep(0.01)  # the test's timeout bounds the wait
    return [m.message for m in await store.history(1, before=None, limit=10)]


@pytest.mark.parametrize("shared", [False, True], ids=["own-store", "shared-store"])
@pytest.mark.parametrize(
    "failure", [StoreError("store away"), RuntimeError("driver bug")], ids=["store", "other"]
)
async def test_a_failed_batch_is_retried_and_later_ones_stored(
    shared: bool, failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    bus = InMemoryBus()
    store = FlakyStore([failure, failure], shared=shared)
    persister = Persister(bus, store)
    await bus.start()
    persister.start()
    try:
        await bus.publish("1", message(1).to_json())
        assert await stored(store, persister) == ["m1"]
        await bus.publish("1", message(2).to_json())
        assert await stored(store, persister) == ["m1", "m2"]
    finally:
        persister.stop_retrying()
        await bus.close()
        await persister.close()
    reasons = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(reasons) == 1, "a reason recurring in a row is logged once"
    assert str(failure) in reasons[0].getMessage()
    assert bool(reasons[0].exc_info) != isinstance(failure, StoreError), "traceback if unexpected"


async def test_what_the_store_refuses_at_shutdown_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = InMemoryBus()
    store = FlakyStore([RuntimeError("driver bug")] * 2, shared=False)
    persister = Persister(bus, store)
    await bus.publish("1", message(1).to_json())  # not started: held until close
    await persister.close()
    assert "given up at shutdown: RuntimeError: driver bug" in caplog.text
