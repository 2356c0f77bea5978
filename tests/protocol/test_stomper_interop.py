from __future__ import annotations

# Interoperability with ``stomper`` 0.4.3, a minimal STOMP 1.0/1.1 client library.
import pytest
import stomper
import stomper.stomp_10 as stomper_10

from protocol.errors import MalformedFrame, ProtocolError
from protocol.frames import Command, Frame, HeartBeat
from protocol.parser import Parser
from protocol.serializer import MessageTemplate, message_head, serialize
from protocol.session import ServerSession, State, receipt_frame

from ._helpers import HB, byte_by_byte, parse_bytes, parse_until_error

C = Command


def _feed(session: ServerSession, text: str) -> list[tuple[Frame, list[Frame]]]:
    return list(session.receive_data(text.encode()))


def _connected_1_1() -> ServerSession:
    session = ServerSession()
    _feed(session, stomper.connect("user", "secret", "localhost", heartbeats=(0, 5000)))
    assert session.version == "1.1"
    return session


def test_stomper_connect() -> None:
    session = ServerSession()
    text = stomper.connect("user", "secret", "localhost", heartbeats=(4000, 5000))
    ((frame, effects),) = _feed(session, text)
    assert frame == Frame(
        C.CONNECT,
        (
            ("accept-version", "1.1"),
            ("host", "localhost"),
            ("heart-beat", "4000,5000"),
            ("login", "user"),
            ("passcode", "secret"),
        ),
    )
    assert effects == [frame]
    assert session.state is State.CONNECTED
    assert session.version == "1.1"
    # Server offers (5000, 10000); it sends every 5 s and expects the client every 10 s.
    assert session.heart_beat == (5000, 10_000)


def test_stomper_frames_are_accepted_by_the_session() -> None:
    session = _connected_1_1()
    texts = [
        stomper.subscribe("/queue/a", "sub-1", ack="client-individual"),
        stomper.send("/queue/a", "hello world"),
        stomper.ack("m-1", "sub-1"),
        stomper.nack("m-2", "sub-1"),
        stomper.begin("tx-1"),
        stomper.send("/queue/a", "in tx", transactionid="tx-1"),
        stomper.ack("m-3", "sub-1", "tx-1"),
        stomper.commit("tx-1"),
        stomper.begin("tx-2"),
        stomper.abort("tx-2"),
        stomper.unsubscribe("sub-1"),
    ]
    pairs = [pair for text in texts for pair in _feed(session, text)]
    frames = [frame for frame, _ in pairs]
    assert [frame.command for frame in frames] == [
        C.SUBSCRIBE,
        C.SEND,
        C.ACK,
        C.NACK,
        C.BEGIN,
        C.SEND,
        C.ACK,
        C.COMMIT,
        C.BEGIN,
        C.ABORT,
        C.UNSUBSCRIBE,
    ]
    assert frames[0] == Frame(
        C.SUBSCRIBE, (("id", "sub-1"), ("destination", "/queue/a"), ("ack", "client-individual"))
    )
    assert frames[1] == Frame(
        C.SEND, (("destination", "/queue/a"), ("content-type", "text/plain")), b"hello world"
    )
    assert frames[2] == Frame(C.ACK, (("subscription", "sub-1"), ("message-id", "m-1")))
    # The frames of tx-1 come out on COMMIT.
    assert pairs[5][1] == []
    assert pairs[6][1] == []
    assert pairs[7][1] == [frames[5], frames[6], frames[7]]
    assert session.state is State.CONNECTED


def test_stomper_frames_in_one_stream_byte_by_byte() -> None:
    text = "".join(
        [
            stomper.connect("u", "p", "h"),
            stomper.subscribe("/topic/t", "0"),
            stomper.send("/topic/t", "x"),
            stomper.unsubscribe("0"),
        ]
    )
    session = ServerSession()
    commands = [
        frame.command
        for chunk in byte_by_byte(text.encode())
        for frame, _ in session.receive_data(chunk)
    ]
    assert commands == [C.CONNECT, C.SUBSCRIBE, C.SEND, C.UNSUBSCRIBE]


def test_stomper_trailing_newline_is_a_heart_beat() -> None:
    events = parse_bytes(stomper.begin("t").encode())
    assert events == [Frame(C.BEGIN, (("transaction", "t"),)), HB]
    assert isinstance(events[1], HeartBeat)


def test_stomper_1_1_disconnect_lacks_the_blank_line_and_is_refused() -> None:
    # stomper 0.4.3 writes "DISCONNECT\nreceipt:r\n\x00\n": the NUL sits where the
    # blank line ending the headers must be, so the frame is malformed STOMP.
    text = stomper.disconnect("r-1")
    assert text == "DISCONNECT\nreceipt:r-1\n\x00\n"
    events, error = parse_until_error([text.encode()])
    assert events == []
    assert isinstance(error, MalformedFrame)


def test_stomper_packed_frame_is_accepted() -> None:
    packed = stomper.Frame()
    packed.cmd = "SEND"
    packed.headers = {"destination": "/queue/a", "receipt": "r-1"}
    packed.body = "payload"
    session = _connected_1_1()
    ((frame, effects),) = _feed(session, packed.pack())
    assert frame == Frame(C.SEND, (("destination", "/queue/a"), ("receipt", "r-1")), b"payload")
    assert effects == [frame]


def test_stomper_1_0_frames_are_accepted() -> None:
    session = ServerSession()
    texts = [
        stomper_10.connect("user", "secret"),
        stomper_10.send("/queue/a", "hello"),
        stomper_10.ack("m-1"),
        stomper_10.begin("tx"),
        stomper_10.send("/queue/a", "held", transactionid="tx"),
        stomper_10.commit("tx"),
        stomper_10.unsubscribe("/queue/a"),
        stomper_10.disconnect(),
    ]
    pairs = [pair for text in texts for pair in _feed(session, text)]
    assert session.version == "1.0"
    assert [frame.command for frame, _ in pairs] == [
        C.CONNECT,
        C.SEND,
        C.ACK,
        C.BEGIN,
        C.SEND,
        C.COMMIT,
        C.UNSUBSCRIBE,
        C.DISCONNECT,
    ]
    # stomper's 1.0 frames pad values with a space; 1.0 sessions trim them.
    assert pairs[1][0].get("destination") == "/queue/a"
    assert [effect.body for effect in pairs[5][1]] == [b"held", b""]
    assert session.state is State.CLOSED


def test_stomper_1_0_subscribe_padding_is_kept_by_a_bare_parser() -> None:
    frame, beat = Parser().feed(stomper_10.subscribe("/queue/a", ack="client").encode())
    assert beat == HB
    assert frame == Frame(C.SUBSCRIBE, (("destination", " /queue/a"), ("ack", " client")))


def test_stomper_1_0_subscribe_is_accepted_by_a_1_0_session() -> None:
    session = ServerSession()
    texts = [stomper_10.connect("user", "secret"), stomper_10.subscribe("/queue/a", ack="client")]
    pairs = [pair for text in texts for pair in _feed(session, text)]
    subscribe = pairs[1][0]
    assert (subscribe.get("destination"), subscribe.get("ack")) == ("/queue/a", "client")


def test_stomper_unpacks_a_message_template() -> None:
    template = MessageTemplate(
        (("destination", "/queue/a"), ("message-id", "m-1"), ("content-type", "text/plain")),
        b"hello world",
    )
    data = template.render(message_head("sub-1", "1.1"), "1.1", ack="ack-1")
    unpacked = stomper.unpack_frame(data.decode())
    assert unpacked == {
        "cmd": "MESSAGE",
        "headers": {
            "subscription": "sub-1",
            "ack": "ack-1",
            "destination": "/queue/a",
            "message-id": "m-1",
            "content-type": "text/plain",
            "content-length": "11",
        },
        "body": "hello world",
    }
    frame = stomper.Frame()
    frame.unpack(data.decode())
    assert frame.cmd == "MESSAGE"
    assert frame.headers["subscription"] == "sub-1"


def test_stomper_engine_acks_a_served_message() -> None:
    session = _connected_1_1()
    engine = stomper.Engine()
    connected = session.send(session.connected_frame(session="sess-1", server="gw"))
    assert engine.react(connected.decode()) == stomper.NO_RESPONSE_NEEDED
    assert engine.sessionId == "sess-1"

    message = serialize(
        Frame(
            C.MESSAGE,
            (("subscription", "sub-1"), ("message-id", "m-42"), ("destination", "/queue/a")),
            b"hi",
        ),
        "1.1",
    )
    reply = engine.react(message.decode())
    ((frame, effects),) = _feed(session, reply)
    assert frame == Frame(C.ACK, (("subscription", "sub-1"), ("message-id", "m-42")))
    assert effects == [frame]


def test_stomper_engine_reads_receipt_and_error() -> None:
    engine = stomper.Engine(testing=True)
    receipt = serialize(receipt_frame("r-1"), "1.1").decode()
    assert stomper.unpack_frame(receipt)["headers"] == {"receipt-id": "r-1"}
    assert engine.react(receipt) == "receipt"
    session = ServerSession()
    with pytest.raises(ProtocolError) as info:
        list(session.receive_data(b"SEND\ndestination:/q\nreceipt:r-2\n\n\x00"))
    error_text = session.fail(info.value).decode()
    unpacked = stomper.unpack_frame(error_text)
    assert unpacked["cmd"] == "ERROR"
    assert unpacked["headers"]["message"] == "not connected"
    assert unpacked["headers"]["receipt-id"] == "r-2"
    assert unpacked["body"] == "expected CONNECT or STOMP, not SEND"
    assert engine.react(error_text) == "error"
