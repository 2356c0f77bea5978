"""The message bus interface: what the gateway needs from Kafka or its stand-in."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = [
    "BatchHandler",
    "BusError",
    "Delivery",
    "FanOutCounts",
    "Listener",
    "LogRange",
    "LogUnavailable",
    "MessageBus",
    "PublishError",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """
    A record read back from the bus, with its position.

    Attributes:
        key: The record key: the chat room id.
        value: The record value: the chat message JSON.
        partition: Partition the record was written to.
        offset: Offset of the record within its partition.
        timestamp: When the record was published, in seconds since the epoch
            (Kafka's CreateTime; 0 when unknown); not part of its identity.

    """

    key: str
    value: bytes
    partition: int
    offset: int
    timestamp: float = dataclasses.field(default=0.0, compare=False)


@dataclasses.dataclass(slots=True)
class FanOutCounts:
    """
    What the fan-out consumer read, since the bus started.

    Attributes:
        fetched: Records fetched from the bus.
        skipped: Of those, records dropped by their key: no keyed listener watched it.
        bytes: Bytes of the values fetched.
        partitions: Partitions fetched now.

    """

    fetched: int = 0
    skipped: int = 0
    bytes: int = 0
    partitions: int = 0


Listener = Callable[[Delivery], None]
BatchHandler = Callable[[list[Delivery]], Awaitable[None]]


class PublishError(Exception):
    """The bus did not take a record; the sender must be told."""


class BusError(Exception):
    """The bus cannot start: unreachable, or misconfigured; the message says why."""


class LogUnavailable(Exception):
    """A range of the bus's log cannot be read: not retained, unreachable, or no log kept."""


@dataclasses.dataclass(frozen=True, slots=True)
class LogRange:
    """
    Records of one key read back from a partition's log.

    Attributes:
        records: The key's records at offsets ``start`` to ``end - 1``, in partition order.
        end: The offset before which the log was read: every record of the
            key below it (and from the ``start`` asked for) is in ``records``.

    """

    records: list[Delivery]
    end: int


class MessageBus(Protocol):
    """
    Carries chat messages between gateway instances, in order per key.

    Listeners are called with every record of every partition, in partition
    order, on every instance (the fan-out); keyed listeners at least with
    those of the keys watched.
    """

    async def start(self) -> None:
        """Connect, and start delivering to listeners."""

    async def close(self) -> None:
        """Flush what was published and stop delivering."""

    async def publish(self, key: str, value: bytes) -> Awaitable[None] | None:
        """
        Queue a record; records published one after another keep their order.

        Returns:
            None when the record is durable already, or an awaitable that
            completes once it is (and raises :class:`PublishError` if it
            never is): callers may go on publishing meanwhile.

        Raises:
            PublishError: The record was not taken.

        """

    def add_listener(self, listener: Listener, *, keyed: bool = False) -> None:
        """
        Call ``listener`` for every record delivered from now on.

        A ``keyed`` listener needs only the records of watched keys (and
        those without a key): when every listener is keyed, the bus may drop
        the others unread.
        """

    def watch(self, key: str) -> Awaitable[None] | None:
        """
        Hand keyed listeners the records keyed ``key`` from now on.

        Returns:
            None, or an awaitable when the bus must first start reading the
            key's partition: records published after it completes are handed on.

        """

    def unwatch(self, key: str) -> None:
        """Keyed listeners need no more records keyed ``key``."""

    def fan_out_counts(self) -> FanOutCounts:
        """What the fan-out read so far."""

    def add_durable_listener(self, group: str, handler: BatchHandler) -> None:
        """
        Hand every record to ``handler`` in batches, at least once.

        Records are read as consumer group ``group``, which resumes after the
        last batch ``handler`` returned from, even across restarts (Kafka);
        the handler must be idempotent, and may retry as long as it likes.
        """

    def durable_lag(self) -> int:
        """Records the durable listeners have not finished with."""

    async def durable_position(self, group: str, partition: int) -> int | None:
        """
        Return the offset of ``partition`` before which the durable listener
        ``group`` has finished with every record; None when unknown.
        """

    def fan_out_lag(self) -> dict[int, int]:
        """Records of each partition not yet handed to the listeners (empty: no lag to tell)."""

    async def check(self) -> str | None:
        """Return None when the bus is reachable, else the reason it is not."""

    def partition_of(self, key: str) -> int:
        """Return the partition records keyed ``key`` are published to."""

    def fan_out_position(self, partition: int) -> int | None:
        """
        Return the offset of ``partition`` before which the fan-out has handed
        on (or skipped) every record; None when it does not read the partition.
        """

    async def read_log(self, key: str, start: int, end: int | None, limit: int) -> LogRange:
        """
        Read back the records keyed ``key`` from ``start`` to ``end`` (exclusive; None:
        the partition's end now) of the key's partition, skipping other keys.

        Reading stops early after ``limit`` records of the key (the range's
        ``end`` then says how far it got).

        Raises:
            LogUnavailable: Part of the range is no longer retained, or the
                log cannot be read (no log kept, the broker is unreachable).

        """
