"""
:class:`StompConnection` against a WebSocket without a socket: dispatch to the
application's handlers, RECEIPT order behind the bus, the outbound queue and
its slow-consumer verdict, and how each kind of ending closes the WebSocket.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Close, CloseCode

import gateway.transport.receipts
from gateway.config import Config
from gateway.transport import disconnects
from gateway.transport.handlers import Refusal
from protocol import HeartBeatPolicy, InvalidFrame, MessageTemplate
from tests.gateway.transport.fake_websocket import ERRORS, Harness

# Dispatch to the application.


async def test_connect_is_the_applications_then_connected_is_sent() -> None:
    harness = Harness()
    harness.client.send_frame("CONNECT", ("accept-version", "1.2"), ("host", "h"), ("x", "y"))
    await harness.settle()
    [connected] = harness.client.frames
    assert connected.command.value == "CONNECTED"
    assert connected.get("session") == harness.connection.id
    assert harness.app.names() == ["on_connect", "authorize", "on_connected"]
    [on_connect, *_] = harness.app.calls
    assert on_connect.frame is not None
    assert on_connect.frame.get("x") == "y"


async def test_a_refused_connect_is_an_error_and_a_protocol_error_close() -> None:
    harness = Harness()
    harness.app.refuse_connect = InvalidFrame("authentication failed", details="bad token")
    harness.client.send_frame("CONNECT", ("accept-version", "1.2"), ("host", "h"))
    close = await harness.closed()
    assert harness.client.commands() == ["ERROR"]
    assert harness.client.frames[0].get("message") == "authentication failed"
    assert (close.code, close.reason) == (CloseCode.PROTOCOL_ERROR, "authentication failed")
    assert "on_connected" not in harness.app.names()
    assert harness.app.names().count("on_disconnect") == 1


async def test_a_transactions_sends_reach_the_application_at_commit() -> None:
    harness = Harness()
    await harness.connect()
    harness.client.send_frame("BEGIN", ("transaction", "t"))
    harness.client.send_frame("SEND", ("destination", "/a"), ("transaction", "t"))
    await harness.settle()
    assert "on_send" not in harness.app.names()
    harness.client.send_frame("COMMIT", ("transaction", "t"), ("receipt", "c"))
    await harness.settle()
    names = harness.app.names()
    after_commit = names[names.index("on_send") :]
    assert after_commit[1:-1] == ["authorize"] * (len(after_commit) - 2)
    assert after_commit[-1] == "sent"
    assert [frame.get("receipt-id") for frame in harness.client.frames] == ["c"]


async def test_every_effect_is_authorized_before_any_takes_place() -> None:
    harness = Harness()
    await harness.connect()
    harness.client.send_frame("BEGIN", ("transaction", "t"))
    harness.client.send_frame("SEND", ("destination", "/a"), ("transaction", "t"))
    harness.client.send_frame(
        "SEND", ("destination", "/b"), ("transaction", "t"), ("forbidden", "1")
    )
    harness.client.send_frame("COMMIT", ("transaction", "t"), ("receipt", "c"))
    await harness.settle()
    assert harness.app.names().count("on_send") == 2
    assert "sent" not in harness.app.names()
    assert harness.app.refused == [("forbidden: /b", "c")]
    assert harness.client.frames == []  # no RECEIPT for a refused COMMIT
    assert harness.task.done() is False  # the session goes on


async def test_a_refused_send_is_reported_and_the_session_goes_on() -> None:
    harness = Harness()
    await harness.connect()
    harness.client.send_frame("SUBSCRIBE", ("id", "e"), ("destination", ERRORS))
    harness.client.send_frame(
        "SEND", ("destination", "/a"), ("refuse", "no room"), ("receipt", "1")
    )
    harness.client.send_frame("SEND", ("destination", "/a"), ("receipt", "2"))
    await harness.settle()
    error, receipt = harness.client.frames
    assert (error.command.value, error.get("receipt-id"), error.body) == (
        "MESSAGE",
        "1",
        b"no room",
    )
    assert (receipt.command.value, receipt.get("receipt-id")) == ("RECEIPT", "2")
    assert harness.metrics.errors["no room"] == 1


async def test_subscriptions_are_the_transports_and_the_application_hears_of_them() -> None:
    harness = Harness()
    await harness.connect()
    harness.client.send_frame("SUBSCRIBE", ("id", "s"), ("destination", "/d"), ("receipt", "1"))
    await harness.settle()
    [subscription] = harness.app.subscriptions
    assert (subscription.id, subscription.destination) == ("s", "/d")
    assert harness.registry.of(harness.connection, "/d") == [subscription]
    harness.client.send_frame("UNSUBSCRIBE", ("id", "s"), ("receipt", "2"))
    await harness.settle()
    assert harness.app.names()[-1] == "on_unsubscribe"
    assert len(harness.registry) == 0
    assert [frame.get("receipt-id") for frame in harness.client.frames] == ["1", "2"]


async def test_a_replaced_subscription_ends_for_the_application_too() -> None:
    harness = Harness()
    await harness.connect()
    harness.client.send_frame("SUBSCRIBE", ("id", "1"), ("destination", "/d"))
    harness.client.send_frame("SUBSCRIBE", ("id", "2"), ("destination", "/d"))
    await harness.settle()
    assert harness.app.names().count("on_unsubscribe") == 1
    assert [sub.id for sub in harness.registry.of(harness.connection, "/d")] == ["2"]


async def test_the_end_of_a_session_is_told_once_and_removes_its_subscriptions() -> None:
    harness = Harness()
    await harness.connect()
    harness.client.send_frame("SUBSCRIBE", ("id", "1"), ("destination", "/d"))
    harness.client.send_frame("SUBSCRIBE", ("id", "2"), ("destination", "/e"))
    harness.client.send_frame("DISCONNECT")
    await harness.closed()
    assert harness.app.names().count("on_disconnect") == 1
    assert len(harness.registry) == 0


async def test_an_application_failure_is_an_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = Harness()
    await harness.connect()
    harness.app.failure = RuntimeError("bug")
    harness.client.send_frame("SEND", ("destination", "/a"))
    close = await harness.closed()
    assert (close.code, close.reason) == (CloseCode.INTERNAL_ERROR, "internal error")
    assert harness.client.commands() == ["ERROR"]
    [failed] = [r for r in caplog.records if getattr(r, "event", None) == "failed"]
    assert failed.getMessage().startswith(f"session {harness.connection.id} failed")


# RECEIPTs behind the bus.


async def test_receipts_follow_the_frames_while_the_bus_acknowledges_out_of_order() -> None:
    harness = Harness()
    await harness.connect()
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    harness.app.acks.update({"1": first, "2": second})
    for receipt in ("1", "2", "3"):
        harness.client.send_frame(
            "SEND", ("destination", "/a"), ("id", receipt), ("receipt", receipt)
        )
    await harness.settle()
    assert harness.client.frames == []  # every RECEIPT waits for the first
    second.set_result(None)
    await harness.settle()
    assert harness.client.frames == []
    first.set_result(None)
    await harness.settle()
    assert [frame.get("receipt-id") for frame in harness.client.frames] == ["1", "2", "3"]


async def test_a_send_the_bus_refuses_later_is_reported_in_its_place() -> None:
    harness = Harness()
    await harness.connect()
    harness.client.send_frame("SUBSCRIBE", ("id", "e"), ("destination", ERRORS))
    failing = asyncio.get_running_loop().create_future()
    harness.app.acks["1"] = failing
    harness.client.send_frame("SEND", ("destination", "/a"), ("id", "1"), ("receipt", "1"))
    harness.client.send_frame("SEND", ("destination", "/a"), ("receipt", "2"))
    await harness.settle()
    failing.set_exception(Refusal("message not sent: bus down"))
    await harness.settle()
    assert [(f.command.value, f.get("receipt-id")) for f in harness.client.frames] == [
        ("MESSAGE", "1"),
        ("RECEIPT", "2"),
    ]
    assert harness.app.refused == [("message not sent: bus down", "1")]


# What each SEND is: acknowledged by the bus or at once, refused at once or by the bus.
_SEND = st.sampled_from(["now", "bus", "refused", "bus refuses"])


@settings(max_examples=60, deadline=None)
@given(kinds=st.lists(_SEND, min_size=1, max_size=12), data=st.data())
def test_receipts_and_refusals_leave_in_the_frames_order(
    kinds: list[str], data: st.DataObject
) -> None:
    """Whatever order the bus acknowledges in, the client hears of each SEND in order."""

    async def scenario() -> list[tuple[str, str | None]]:
        harness = Harness()
        await harness.connect()
        harness.client.send_frame("SUBSCRIBE", ("id", "e"), ("destination", ERRORS))
        loop = asyncio.get_running_loop()
        for index, kind in enumerate(kinds):
            headers = [("destination", "/a"), ("id", str(index)), ("receipt", str(index))]
            if kind == "refused":
                headers.append(("refuse", f"refused {index}"))
            if kind.startswith("bus"):
                harness.app.acks[str(index)] = loop.create_future()
            harness.client.send_frame("SEND", *headers)
        await harness.settle()
        pending = list(harness.app.acks.items())
        for key, future in data.draw(st.permutations(pending)):
            if kinds[int(key)] == "bus refuses":
                future.set_exception(Refusal(f"refused {key}"))
            else:
                future.set_result(None)
            await harness.settle()
        harness.client.send_frame("DISCONNECT")
        await harness.closed()
        return [(frame.command.value, frame.get("receipt-id")) for frame in harness.client.frames]

    expected = [
        ("MESSAGE" if kind in ("refused", "bus refuses") else "RECEIPT", str(index))
        for index, kind in enumerate(kinds)
    ]
    assert asyncio.run(scenario()) == expected


async def test_too_many_frames_awaiting_the_bus_stop_the_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gateway.transport.receipts, "MAX_IN_FLIGHT", 2)
    harness = Harness()
    await harness.connect()
    loop = asyncio.get_running_loop()
    for index in range(5):
        harness.app.acks[str(index)] = loop.create_future()
        harness.client.send_frame("SEND", ("destination", "/a"), ("id", str(index)))
    await harness.settle()
    assert harness.app.names().count("on_send") == 3  # the third over the limit waits
    for index in range(3):  # until those are concluded
        assert harness.app.names().count("on_send") == 3
        harness.app.acks[str(index)].set_result(None)
        await harness.settle()
    assert harness.app.names().count("on_send") == 5


async def test_going_away_lets_the_receipts_out_then_closes_with_1001() -> None:
    harness = Harness()
    await harness.connect()
    ack = asyncio.get_running_loop().create_future()
    harness.app.acks["1"] = ack
    harness.client.send_frame("SEND", ("destination", "/a"), ("id", "1"), ("receipt", "1"))
    await harness.settle()
    going = asyncio.create_task(harness.connection.going_away("server shutting down"))
    await harness.settle()
    assert harness.client.frames == []
    assert not going.done()
    ack.set_result(None)
    close = await harness.closed()
    assert harness.client.commands() == ["RECEIPT", "ERROR"]
    assert (close.code, close.reason) == (CloseCode.GOING_AWAY, "server shutting down")
    await going


# The outbound queue.


def _message(size: int) -> MessageTemplate:
    return MessageTemplate((("destination", "/d"), ("message-id", "m")), b"x" * size)


async def _subscribed(harness: Harness) -> None:
    await harness.connect()
    harness.client.send_frame("SUBSCRIBE", ("id", "s"), ("destination", "/d"))
    await harness.settle()


async def test_a_queue_over_max_outbound_bytes_is_a_slow_consumer_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = Config(max_frame_size=1024, max_outbound_bytes=8 * 1024, outbound_low_water=1024)
    harness = Harness(config)
    await _subscribed(harness)
    [subscription] = harness.app.subscriptions
    for _ in range(20):  # one fan-out: nothing is written in between
        harness.connection.deliver(subscription, _message(500))
    close = await harness.closed()
    assert close.code == CloseCode.POLICY_VIOLATION
    assert close.reason.startswith("slow consumer: ")
    assert close.reason.endswith("bytes queued, over 8192")
    assert harness.client.frames == []  # the queue was dropped
    assert harness.metrics.slow_consumer_disconnects == 1
    assert not any(record.exc_info for record in caplog.records)


async def test_a_queue_left_over_the_low_water_mark_too_long_is_a_slow_consumer() -> None:
    config = Config(
        max_frame_size=1024,
        max_outbound_bytes=1024 * 1024,
        outbound_low_water=4 * 1024,
        send_time_limit=0.05,
    )
    harness = Harness(config)
    await _subscribed(harness)
    [subscription] = harness.app.subscriptions
    harness.client.stall()
    while not harness.metrics.slow_consumer_disconnects:
        # The socket's buffer fills; then the queue grows, and stays.
        harness.connection.deliver(subscription, _message(900))
        await asyncio.sleep(0.001)
    harness.client.drain()  # the close frame waits in the socket behind the messages
    close = await harness.closed()
    assert close.code == CloseCode.POLICY_VIOLATION
    assert "still queued after 0.05 s" in close.reason
    assert harness.metrics.slow_consumer_disconnects == 1


async def test_a_client_that_catches_up_in_time_is_no_slow_consumer() -> None:
    config = Config(max_frame_size=1024, outbound_low_water=4 * 1024, send_time_limit=0.2)
    harness = Harness(config)
    await _subscribed(harness)
    [subscription] = harness.app.subscriptions
    harness.client.stall()
    for _ in range(100):
        harness.connection.deliver(subscription, _message(900))
        await asyncio.sleep(0)
    harness.client.drain()
    await asyncio.sleep(0.3)  # past the time limit
    assert harness.metrics.slow_consumer_disconnects == 0
    assert len(harness.client.frames) == 100
    harness.client.send_frame("DISCONNECT")
    assert (await harness.closed()).code == CloseCode.NORMAL_CLOSURE


async def test_a_heart_beat_goes_straight_to_an_idle_socket() -> None:
    harness = Harness(policy=HeartBeatPolicy(send_floor_ms=50))
    harness.client.send_frame("CONNECT", ("accept-version", "1.2"), ("heart-beat", "0,50"))
    await harness.settle()
    while not harness.client.beats:
        await asyncio.sleep(0.01)
    assert harness.client.commands() == ["CONNECTED"]


# How connections end.


async def test_disconnect_closes_normally_after_its_receipt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "gateway.transport.connection")
    harness = Harness()
    await harness.connect()
    harness.client.send_frame("DISCONNECT", ("receipt", "bye"))
    close = await harness.closed()
    assert harness.client.commands() == ["RECEIPT"]
    assert (close.code, close.reason) == (CloseCode.NORMAL_CLOSURE, "client disconnected")
    [closed] = [r for r in caplog.records if getattr(r, "event", None) == "closed"]
    assert "closed_by=client" in closed.getMessage()
    assert (closed.session, closed.reason) == (harness.connection.id, "client disconnected")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("NONSENSE\n\n\0", "unknown command"),
        ("SEND\ndestination:/a\n\n\0", "not connected"),
        ("\0" * 20_000, "too much data before CONNECT"),
    ],
)
async def test_a_protocol_error_is_an_error_frame_and_1002(
    data: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness()
    harness.client.send(data)
    close = await harness.closed()
    assert harness.client.commands() == ["ERROR"]
    assert message in (harness.client.frames[0].get("message") or "")
    assert close.code == CloseCode.PROTOCOL_ERROR
    assert not any(record.exc_info for record in caplog.records)


async def test_the_heart_beat_timeout_closes_with_1008() -> None:
    policy = HeartBeatPolicy(send_floor_ms=50, receive_ms=50, tolerance=1.0)
    harness = Harness(policy=policy)
    harness.client.send_frame("CONNECT", ("accept-version", "1.2"), ("heart-beat", "50,0"))
    close = await harness.closed()
    assert (close.code, close.reason) == (CloseCode.POLICY_VIOLATION, "heart-beat timeout")
    assert harness.metrics.heartbeat_timeouts == 1


async def test_a_client_close_is_logged_as_the_clients(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway.transport.connection")
    harness = Harness()
    await harness.connect()
    harness.client.close_with(CloseCode.GOING_AWAY, "tab closed")
    await harness.task
    [closed] = [r for r in caplog.records if getattr(r, "event", None) == "closed"]
    assert "code=1001 reason=tab closed closed_by=client" in closed.getMessage()
    assert harness.app.names().count("on_disconnect") == 1


async def test_a_connection_cancelled_while_open_closes_with_1001(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As asyncio.run exiting with clients connected: RFC 6455 §7.4.1 forbids
    # 1006 in a close frame, so the gateway says it is going away (§7.1.1).
    caplog.set_level(logging.INFO)
    harness = Harness()
    await harness.connect()
    harness.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(harness.task, 10)
    assert harness.client.close is not None
    assert harness.client.close.code == CloseCode.GOING_AWAY
    assert not [record for record in caplog.records if record.exc_info]
    assert harness.app.names().count("on_disconnect") == 1


@pytest.mark.parametrize(
    "disconnect",
    [
        disconnects.CLIENT_DISCONNECTED,
        disconnects.HEART_BEAT_TIMEOUT,
        disconnects.CLIENT_CLOSED,
        disconnects.protocol_error("too many unacknowledged messages"),
        disconnects.going_away("server restarting"),
        disconnects.SERVER_GOING_AWAY,
        disconnects.internal_error("internal error"),
        disconnects.slow_consumer("4194305 bytes queued, over 4194304"),
    ],
)
def test_every_close_the_gateway_sends_is_a_valid_close_frame(
    disconnect: disconnects.Disconnect,
) -> None:
    Close(disconnect.code, disconnect.reason).check()  # RFC 6455 §7.4.1, §5.5
