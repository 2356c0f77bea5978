"""``/metrics``: what a scripted session adds to the counters, gauges back at zero."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import Gateway
from gateway.metrics import Metrics, error_reason
from protocol import Command
from tests.support.http import http_get
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import StompTestClient, chat_body, connected

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(port: int) -> Samples:
    status, body = await http_get(port, "/metrics")
    assert status == 200, body
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((f"stomp_gateway_{name}", tuple(sorted(labels.items()))), 0.0)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def wait_for_no_connection(port: int) -> Samples:
    for _ in range(500):
        samples = await scrape(port)
        if value(samples, "connections") == 0:
            return samples
        await asyncio.sleep(0.01)
    raise AssertionError(f"a connection is still counted: {samples}")


async def test_scripted_session_counts_and_gauges_return_to_zero(gateway: Gateway) -> None:
    before = await scrape(gateway.port)
    client = await StompTestClient.open(gateway.port)
    await client.connect("1.2")
    await client.subscribe("/sub/chat/4", "sub-0")
    await client.subscribe("/sub/chat/5", "sub-1")
    during = await scrape(gateway.port)
    assert value(during, "connections") == 1
    assert value(during, "subscriptions") == 2
    await client.send_chat(4, chat_body("hi"))
    await client.expect(Command.MESSAGE)
    client.ws.transport.abort()  # dropped, no DISCONNECT
    after = await wait_for_no_connection(gateway.port)

    assert value(after, "subscriptions") == 0
    for command, count in (("CONNECT", 1), ("SUBSCRIBE", 2), ("SEND", 1)):
        assert delta(after, before, "frames_received_total", command=command) == count
    for command, count in (("CONNECTED", 1), ("RECEIPT", 3), ("MESSAGE", 1), ("ERROR", 0)):
        assert delta(after, before, "frames_sent_total", command=command) == count
    assert delta(after, before, "messages_published_total") == 1
    assert delta(after, before, "messages_delivered_total") == 1
    assert delta(after, before, "fanout_latency_seconds_count") == 1
    assert value(after, "fanout_latency_seconds_bucket", le="+Inf") == 1
    assert value(after, "persister_lag") == 0
    assert delta(after, before, "slow_consumer_disconnects_total") == 0


async def test_errors_are_counted_by_a_bounded_reason(
    gateway: Gateway, clients: list[StompTestClient]
) -> None:
    client = await connected(gateway.port, clients)
    await client.subscribe("/user/queue/errors", "errors")
    await client.send("SEND", [("destination", "/pub/nowhere/123")], b"{}")
    await client.expect(Command.MESSAGE)
    await client.send("ACK", [("id", "no-such-id")])
    await client.expect_error_and_close()
    samples = await wait_for_no_connection(gateway.port)
    assert value(samples, "errors_total", reason="unknown destination") == 1
    assert value(samples, "errors_total", reason="unknown ack id") == 1


def test_error_reason_keeps_the_constant_part() -> None:
    assert error_reason("unknown destination '/pub/x/7'") == "unknown destination"
    assert error_reason("message not sent: KafkaTimeoutError()") == "message not sent"
    assert error_reason("message is longer than 5 characters") == "message is longer than"
    assert error_reason("frame too large") == "frame too large"
    assert error_reason("'quoted' first") == "other"
    assert len(error_reason("x" * 500)) <= 48


def test_gateways_in_one_process_keep_their_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.messages_delivered += 3
    assert b"stomp_gateway_messages_delivered_total 3.0" in first.render()
    assert b"stomp_gateway_messages_delivered_total 0.0" in second.render()


@pytest.mark.kafka
async def test_kafka_consumer_lag_per_partition(
    make_gateway: GatewayFactory, kafka_bootstrap: str, created_kafka_topic: str
) -> None:
    gateway = await make_gateway(kafka_bootstrap=kafka_bootstrap, kafka_topic=created_kafka_topic)
    partitions = {"0", "1", "2"}
    for _ in range(200):  # each partition shows once a fetch told its high-water mark
        samples = await scrape(gateway.port)
        lags = {
            labels[0][1]: lag
            for (name, labels), lag in samples.items()
            if name == "stomp_gateway_kafka_consumer_lag"
        }
        if set(lags) == partitions:
            break
        await asyncio.sleep(0.05)
    assert lags == dict.fromkeys(partitions, 0.0)


async def test_recoveries_are_counted_by_outcome_with_the_messages_sent(
    gateway: Gateway, clients: list[StompTestClient]
) -> None:
    sender = await connected(gateway.port, clients)
    watcher = await connected(gateway.port, clients)
    await watcher.subscribe("/sub/chat/6")
    for text in ("a", "b", "c"):
        await sender.send_chat(6, chat_body(text))
    first = await watcher.expect(Command.MESSAGE)
    for last_id, subscription in ((first.get("message-id", ""), "again"), ("nope", "unknown")):
        again = await connected(gateway.port, clients)
        await again.subscribe("/sub/chat/6", subscription, headers=[("x-last-message-id", last_id)])
    samples = await scrape(gateway.port)
    assert value(samples, "recoveries_total", outcome="store") == 1
    assert value(samples, "recoveries_total", outcome="not recovered") == 1
    assert value(samples, "messages_recovered_total") == 2
