"""
The gateway's Prometheus metrics, served at ``/metrics``.

The hot path only adds to plain integers (a delivery costs one ``+= 1``);
:class:`Metrics` is a collector that turns them, and the gauges it reads
from the gateway, into metric families when Prometheus scrapes. Each gateway
has a registry of its own, so several gateways live in one process (tests).
The one exception is the fan-out latency histogram, observed once per bus
record, not per subscriber.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from kafka_bridge import FanOutCounts
from protocol import Command

__all__ = ["CONTENT_TYPE", "Metrics", "error_reason"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "stomp_gateway_"
# Publish to queued-for-write, in seconds: sub-millisecond locally, seconds when a broker lags.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# An error reason stops before its variable part: a quote, a digit, a colon.
_VARIABLE_PART = re.compile(r"""[:'"\d({\[]""")
MAX_REASON = 48


def error_reason(text: str) -> str:
    """
    Return a bounded label for an error: its text up to the first variable part.

    ``unknown destination '/x'`` and ``message not sent: timeout`` become
    ``unknown destination`` and ``message not sent``; ids and numbers never
    reach a label, so the number of series stays small.
    """
    head = _VARIABLE_PART.split(text, maxsplit=1)[0].strip()
    return head[:MAX_REASON] or "other"


def _no_lag() -> Mapping[int, int]:
    return {}


def _zero() -> int:
    return 0


def _nothing_read() -> FanOutCounts:
    return FanOutCounts()


class Metrics:
    """
    Counters bumped by the gateway, gauges read from it at scrape time.

    Attributes:
        frames_received: STOMP frames read, by command.
        frames_sent: STOMP frames written other than MESSAGE, by command.
        messages_sent: MESSAGE frames queued (fan-out, recovery, replies).
        messages_published: Chat messages the bus acknowledged.
        messages_delivered: Chat messages queued to subscribers by the fan-out.
        slow_consumer_disconnects: Connections closed for queueing too much.
        heartbeat_timeouts: Connections closed for missing heart-beats.
        throttled_seconds: Seconds sessions' sockets went unread for SENDing
            over ``--send-rate`` (``--send-rate-policy throttle``).
        errors: ERROR frames and application errors, by :func:`error_reason`.
        handshakes_refused: WebSocket handshakes refused (origin, address limit), by reason.
        fanout_latency: Seconds from publish to queued on every local subscriber.
        recoveries: Recoveries after a reconnect, by outcome: ``buffer``,
            ``store``, ``log`` (where the messages came from) or ``not recovered``.
        messages_recovered: Missed messages sent by recoveries.

    """

    def __init__(self) -> None:
        self.frames_received = dict.fromkeys(Command, 0)
        self.frames_sent = dict.fromkeys(Command, 0)
        self.messages_sent = 0
        self.messages_published = 0
        self.messages_delivered = 0
        self.slow_consumer_disconnects = 0
        self.heartbeat_timeouts = 0
        self.throttled_seconds = 0.0
        self.errors: dict[str, int] = {}
        self.handshakes_refused: dict[str, int] = {}
        self.recoveries: dict[str, int] = {}
        self.messages_recovered = 0
        self.connections: Callable[[], int] = _zero
        self.subscriptions: Callable[[], int] = _zero
        self.persister_lag: Callable[[], int] = _zero
        self.bus_lag: Callable[[], Mapping[int, int]] = _no_lag
        self.bus_reads: Callable[[], FanOutCounts] = _nothing_read
        self.registry = CollectorRegistry()
        self.fanout_latency = Histogram(
            PREFIX + "fanout_latency_seconds",
            "Seconds from publication to the MESSAGE queued for every local subscriber.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(self)

    def error(self, text: str) -> None:
        """Count an error under its bounded reason."""
        reason = error_reason(text)
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def refused(self, reason: str) -> None:
        """Count a handshake refused for ``reason`` (a fixed phrase)."""
        self.handshakes_refused[reason] = self.handshakes_refused.get(reason, 0) + 1

    def recovered(self, outcome: str, messages: int) -> None:
        """Count a recovery with its ``outcome`` (a fixed word) and the ``messages`` it sent."""
        self.recoveries[outcome] = self.recoveries.get(outcome, 0) + 1
        self.messages_recovered += messages

    def render(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        """Turn the counters and gauges into metric families (the collector protocol)."""
        yield _gauge("connections", "Open STOMP connections.", self.connections())
        yield _gauge("subscriptions", "Live subscriptions.", self.subscriptions())
        sent = {**self.frames_sent, Command.MESSAGE: self.messages_sent}
        yield _by_command("frames_received", "STOMP frames received.", self.frames_received)
        yield _by_command("frames_sent", "STOMP frames sent.", sent)
        yield _counter(
            "messages_published", "Chat messages the bus acknowledged.", self.messages_published
        )
        yield _counter(
            "messages_delivered",
            "Chat messages queued for subscribers by the fan-out.",
            self.messages_delivered,
        )
        yield _counter(
            "slow_consumer_disconnects",
            "Connections closed because too much was queued for them.",
            self.slow_consumer_disconnects,
        )
        yield _counter(
            "heartbeat_timeouts",
            "Connections closed because the client's heart-beats stopped.",
            self.heartbeat_timeouts,
        )
        yield _counter(
            "send_throttled_seconds",
            "Seconds sessions' sockets went unread because they sent over --send-rate.",
            self.throttled_seconds,
        )
        yield _by_reason("errors", "ERROR frames and application errors sent.", self.errors)
        yield _by_reason(
            "handshakes_refused",
            "WebSocket handshakes refused before any STOMP frame.",
            self.handshakes_refused,
        )
        recoveries = CounterMetricFamily(
            PREFIX + "recoveries",
            "Recoveries after a reconnect, by where the missed messages came from.",
            labels=["outcome"],
        )
        for outcome, count in sorted(self.recoveries.items()):
            recoveries.add_metric([outcome], count)
        yield recoveries
        yield _counter(
            "messages_recovered", "Missed messages sent by recoveries.", self.messages_recovered
        )
        lag = GaugeMetricFamily(
            PREFIX + "kafka_consumer_lag",
            "Records of a partition the fan-out consumer has not read yet.",
            labels=["partition"],
        )
        for partition, records in sorted(self.bus_lag().items()):
            lag.add_metric([str(partition)], records)
        yield lag
        yield from _bus_reads(self.bus_reads())
        yield _gauge("persister_lag", "Messages on the bus not yet stored.", self.persister_lag())


def _bus_reads(reads: FanOutCounts) -> Iterator[Metric]:
    yield _counter("kafka_records_fetched", "Records the fan-out consumer fetched.", reads.fetched)
    yield _counter(
        "kafka_records_skipped",
        "Fetched records dropped by their key: no local subscriber in their room.",
        reads.skipped,
    )
    yield _counter("kafka_bytes_fetched", "Bytes of record values fetched.", reads.bytes)
    yield _gauge("kafka_partitions_fetched", "Partitions the fan-out reads now.", reads.partitions)


def _by_reason(name: str, documentation: str, counts: Mapping[str, int]) -> Metric:
    family = CounterMetricFamily(PREFIX + name, documentation, labels=["reason"])
    for reason, count in sorted(counts.items()):
        family.add_metric([reason], count)
    return family


def _gauge(name: str, documentation: str, value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, documentation, value=value)


def _by_command(name: str, documentation: str, counts: Mapping[Command, int]) -> Metric:
    family = CounterMetricFamily(PREFIX + name, documentation, labels=["command"])
    for command, count in counts.items():
        if count:
            family.add_metric([command.value], count)
    return family
