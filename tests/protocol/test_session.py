from __future__ import annotations

# Tests for :mod:`protocol.session`: the server-side STOMP state machine.
import pytest

from protocol.errors import (
    InvalidFrame,
    LimitExceeded,
    LocalProtocolError,
    MalformedFrame,
    ProtocolError,
    UnsupportedVersion,
)
from protocol.frames import CLIENT_COMMANDS, SERVER_COMMANDS, Command, Frame, Headers
from protocol.negotiation import HeartBeatPolicy
from protocol.parser import Limits
from protocol.serializer import serialize
from protocol.session import (
    ACK_MODES,
    TRANSITIONS,
    ServerSession,
    State,
    error_frame,
    receipt_for,
    receipt_frame,
)
from protocol.subscriptions import SubscriptionPolicy

from ._helpers import Client, Record, connected_client, receive_until_error

C = Command
VERSIONS = ("1.0", "1.1", "1.2")
IN_SESSION = sorted(CLIENT_COMMANDS - {C.CONNECT, C.STOMP, C.DISCONNECT}, key=lambda c: c.value)
ORDERED_CLIENT = sorted(CLIENT_COMMANDS, key=lambda c: c.value)
ORDERED_SERVER = sorted(SERVER_COMMANDS, key=lambda c: c.value)
ALL_COMMANDS = sorted(Command, key=lambda c: c.value)


def required(command: Command, version: str = "1.2") -> Headers:
    """Return headers that make ``command`` valid in ``version``."""
    if command in (C.ACK, C.NACK):
        if version == "1.2":
            return (("id", "ack-1"),)
        if version == "1.0":
            return (("message-id", "m-1"),)
        return (("message-id", "m-1"), ("subscription", "0"))
    if command in (C.CONNECT, C.STOMP) and version == "1.0":
        return ()  # a 1.0 client sends no accept-version
    return {
        C.CONNECT: (("accept-version", version),),
        C.STOMP: (("accept-version", version),),
        C.SEND: (("destination", "/queue/a"),),
        C.SUBSCRIBE: (("destination", "/queue/a"), ("id", "0")),
        C.UNSUBSCRIBE: (("id", "0"),),
        C.BEGIN: (("transaction", "tx"),),
        C.COMMIT: (("transaction", "tx"),),
        C.ABORT: (("transaction", "tx"),),
    }.get(command, ())


def connected(version: str = "1.2", **kwargs: object) -> ServerSession:
    session = ServerSession(**kwargs)  # type: ignore[arg-type]
    offer: Headers = () if version == "1.0" else (("accept-version", version),)
    session.receive(Frame(C.CONNECT, offer))
    assert session.state is State.CONNECTED
    assert session.version == version
    return session


# --- the transition table -------------------------------------------------------------------


def test_transitions_table() -> None:
    assert TRANSITIONS[State.CONNECTING] == {
        C.CONNECT: State.CONNECTED,
        C.STOMP: State.CONNECTED,
    }
    assert TRANSITIONS[State.CONNECTED] == {
        **dict.fromkeys(IN_SESSION, State.CONNECTED),
        C.DISCONNECT: State.CLOSED,
    }
    assert TRANSITIONS[State.CLOSED] == {}
    for table in TRANSITIONS.values():
        assert not set(table) & SERVER_COMMANDS


def test_initial_state() -> None:
    session = ServerSession()
    assert session.state is State.CONNECTING
    assert session.version == "1.0"
    assert session.heart_beat == (0, 0)
    assert session.error_sent is None
    assert len(session.subscriptions) == 0
    assert session.parser.version == "1.0"


@pytest.mark.parametrize("command", [C.CONNECT, C.STOMP])
@pytest.mark.parametrize("version", VERSIONS)
def test_connect(command: Command, version: str) -> None:
    session = ServerSession()
    offer: Headers = () if version == "1.0" else (("accept-version", f"1.0,{version}"),)
    frame = Frame(command, (*offer, ("host", "example.org"), ("login", "u")))
    assert session.receive(frame) == [frame]
    assert session.state is State.CONNECTED
    assert session.version == version
    assert session.parser.version == version
    assert session.subscriptions.version == version


@pytest.mark.parametrize("command", [c for c in ALL_COMMANDS if c not in (C.CONNECT, C.STOMP)])
def test_frames_before_connect(command: Command) -> None:
    session = ServerSession()
    with pytest.raises(InvalidFrame) as info:
        session.receive(Frame(command, required(command)))
    assert info.value.message == "not connected"
    assert session.state is State.CONNECTING


@pytest.mark.parametrize("command", [C.CONNECT, C.STOMP])
def test_second_connect(command: Command) -> None:
    session = connected()
    with pytest.raises(InvalidFrame) as info:
        session.receive(Frame(command, (("accept-version", "1.2"),)))
    assert info.value.message == "already connected"
    assert session.state is State.CONNECTED


@pytest.mark.parametrize("command", ORDERED_SERVER)
def test_server_commands_from_client(command: Command) -> None:
    session = connected()
    with pytest.raises(InvalidFrame) as info:
        session.receive(Frame(command, (("receipt-id", "1"), ("destination", "/q"))))
    assert info.value.message == "unexpected frame"
    assert session.state is State.CONNECTED


@pytest.mark.parametrize("command", [c for c in ALL_COMMANDS if c not in (C.CONNECT, C.STOMP)])
def test_frames_after_disconnect(command: Command) -> None:
    session = connected()
    assert session.receive(Frame(C.DISCONNECT)) == [Frame(C.DISCONNECT)]
    assert session.state is State.CLOSED
    with pytest.raises(InvalidFrame) as info:
        session.receive(Frame(command, required(command)))
    assert info.value.message == "session closed"


@pytest.mark.parametrize("command", [C.CONNECT, C.STOMP])
def test_connect_after_disconnect(command: Command) -> None:
    session = connected()
    session.receive(Frame(C.DISCONNECT))
    with pytest.raises(InvalidFrame) as info:
        session.receive(Frame(command, required(command)))
    assert info.value.message == "session closed"


@pytest.mark.parametrize(
    ("version", "command"),
    [(v, c) for v in VERSIONS for c in IN_SESSION if (v, c) != ("1.0", C.NACK)],
)
def test_in_session_frames_return_themselves(version: str, command: Command) -> None:
    session = connected(version)
    if command in (C.COMMIT, C.ABORT):
        session.receive(Frame(C.BEGIN, (("transaction", "tx"),)))
    frame = Frame(command, required(command, version), b"body" if command is C.SEND else b"")
    assert session.receive(frame) == [frame]
    assert session.state is State.CONNECTED


# --- required headers ------------------------------------------------------------------------

REQUIRED_CASES: list[tuple[str, Command, Headers, str | None]] = [
    # (version, command, headers, expected error message or None)
    *((v, C.SEND, (("destination", "/q"),), None) for v in VERSIONS),
    *((v, C.SEND, (("receipt", "r"),), "missing header") for v in VERSIONS),
    # SUBSCRIBE: id is optional in 1.0 only.
    ("1.0", C.SUBSCRIBE, (("destination", "/q"),), None),
    ("1.0", C.SUBSCRIBE, (("destination", "/q"), ("id", "0")), None),
    ("1.0", C.SUBSCRIBE, (("id", "0"),), "missing header"),
    ("1.1", C.SUBSCRIBE, (("destination", "/q"),), "missing header"),
    ("1.2", C.SUBSCRIBE, (("destination", "/q"),), "missing header"),
    ("1.1", C.SUBSCRIBE, (("id", "0"),), "missing header"),
    ("1.2", C.SUBSCRIBE, (("destination", "/q"), ("id", "0")), None),
    # UNSUBSCRIBE: id or destination in 1.0, id since 1.1.
    ("1.0", C.UNSUBSCRIBE, (("id", "0"),), None),
    ("1.0", C.UNSUBSCRIBE, (("destination", "/q"),), None),
    ("1.0", C.UNSUBSCRIBE, (), "missing header"),
    ("1.0", C.UNSUBSCRIBE, (("receipt", "r"),), "missing header"),
    ("1.1", C.UNSUBSCRIBE, (("id", "0"),), None),
    ("1.1", C.UNSUBSCRIBE, (("destination", "/q"),), "missing header"),
    ("1.2", C.UNSUBSCRIBE, (("destination", "/q"),), "missing header"),
    ("1.2", C.UNSUBSCRIBE, (("id", "0"),), None),
    # ACK: message-id in 1.0; message-id and subscription in 1.1; id in 1.2.
    ("1.0", C.ACK, (("message-id", "m"),), None),
    ("1.0", C.ACK, (("id", "m"),), "missing header"),
    ("1.1", C.ACK, (("message-id", "m"), ("subscription", "0")), None),
    ("1.1", C.ACK, (("message-id", "m"),), "missing header"),
    ("1.1", C.ACK, (("subscription", "0"),), "missing header"),
    ("1.1", C.ACK, (("id", "m"),), "missing header"),
    ("1.2", C.ACK, (("id", "m"),), None),
    ("1.2", C.ACK, (("message-id", "m"), ("subscription", "0")), "missing header"),
    # NACK: not in 1.0; like ACK since.
    ("1.0", C.NACK, (("message-id", "m"), ("subscription", "0")), "unexpected frame"),
    ("1.0", C.NACK, (("id", "m"),), "unexpected frame"),
    ("1.1", C.NACK, (("message-id", "m"), ("subscription", "0")), None),
    ("1.1", C.NACK, (("message-id", "m"),), "missing header"),
    ("1.2", C.NACK, (("id", "m"),), None),
    ("1.2", C.NACK, (("message-id", "m"), ("subscription", "0")), "missing header"),
    # Transactions need a name.
    *((v, c, (), "missing header") for v in VERSIONS for c in (C.BEGIN, C.COMMIT, C.ABORT)),
    *((v, C.DISCONNECT, (), None) for v in VERSIONS),
]


@pytest.mark.parametrize(("version", "command", "headers", "error"), REQUIRED_CASES)
def test_required_headers(
    version: str, command: Command, headers: Headers, error: str | None
) -> None:
    session = connected(version)
    frame = Frame(command, headers)
    if error is None:
        assert session.receive(frame) == [frame]
    else:
        with pytest.raises(InvalidFrame) as info:
            session.receive(frame)
        assert info.value.message == error


ACK_CASES = [
    ("1.0", None, True),
    ("1.0", "auto", True),
    ("1.0", "client", True),
    ("1.0", "client-individual", False),
    *((v, m, True) for v in ("1.1", "1.2") for m in (None, "auto", "client", "client-individual")),
    *((v, m, False) for v in VERSIONS for m in ("", "bogus", "Auto", " auto", "client ")),
]


@pytest.mark.parametrize(("version", "mode", "ok"), ACK_CASES)
def test_ack_modes(version: str, mode: str | None, ok: bool) -> None:
    session = connected(version)
    ack: Headers = () if mode is None else (("ack", mode),)
    frame = Frame(C.SUBSCRIBE, (("destination", "/q"), ("id", "0"), *ack))
    if ok:
        assert session.receive(frame) == [frame]
    else:
        with pytest.raises(InvalidFrame) as info:
            session.receive(frame)
        assert info.value.message == "invalid ack mode"


def test_ack_modes_table() -> None:
    assert {
        "1.0": {"auto", "client"},
        "1.1": {"auto", "client", "client-individual"},
        "1.2": {"auto", "client", "client-individual"},
    } == ACK_MODES


# --- receipts on errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (Frame(C.SEND, (("receipt", "r-1"),)), InvalidFrame),
        (Frame(C.MESSAGE, (("receipt", "r-1"),)), InvalidFrame),
        (Frame(C.COMMIT, (("transaction", "nope"), ("receipt", "r-1"))), InvalidFrame),
        (
            Frame(
                C.SUBSCRIBE, (("receipt", "r-1"), ("destination", "/q"), ("id", "1"), ("ack", "x"))
            ),
            InvalidFrame,
        ),
        (Frame(C.CONNECT, (("receipt", "r-1"), ("accept-version", "1.2"))), InvalidFrame),
        # Only the first receipt header counts.
        (Frame(C.SEND, (("receipt", "r-1"), ("receipt", "r-2"))), InvalidFrame),
    ],
)
def test_receipt_id_copied_onto_error(frame: Frame, error: type[ProtocolError]) -> None:
    session = connected()
    with pytest.raises(error) as info:
        session.receive(frame)
    assert info.value.receipt_id == "r-1"
    assert ("receipt-id", "r-1") in error_frame(info.value).headers


def test_receipt_id_on_connect_errors() -> None:
    session = ServerSession()
    frame = Frame(C.CONNECT, (("accept-version", "9.9"), ("receipt", "c-1")))
    with pytest.raises(UnsupportedVersion) as info:
        session.receive(frame)
    assert info.value.receipt_id == "c-1"
    session = ServerSession()
    with pytest.raises(InvalidFrame) as info2:
        session.receive(Frame(C.CONNECT, (("heart-beat", "x"), ("receipt", "c-2"))))
    assert info2.value.receipt_id == "c-2"


def test_no_receipt_no_receipt_id() -> None:
    session = connected()
    with pytest.raises(InvalidFrame) as info:
        session.receive(Frame(C.SEND))
    assert info.value.receipt_id is None
    assert all(name != "receipt-id" for name, _ in error_frame(info.value).headers)


def test_limit_error_gets_receipt_id() -> None:
    session = connected(max_transaction_frames=0)
    session.receive(Frame(C.BEGIN, (("transaction", "t"),)))
    with pytest.raises(LimitExceeded) as info:
        session.receive(
            Frame(C.SEND, (("destination", "/q"), ("transaction", "t"), ("receipt", "big")))
        )
    assert info.value.receipt_id == "big"


# --- transactions ----------------------------------------------------------------------------


def _send(txn: str | None = None, body: bytes = b"m") -> Frame:
    txn_header: Headers = () if txn is None else (("transaction", txn),)
    return Frame(C.SEND, (("destination", "/q"), *txn_header), body)


@pytest.mark.parametrize("version", VERSIONS)
def test_commit_releases_held_frames_in_order(version: str) -> None:
    session = connected(version)
    begin = Frame(C.BEGIN, (("transaction", "t"),))
    assert session.receive(begin) == [begin]
    first, second = _send("t", b"1"), _send("t", b"2")
    ack = Frame(C.ACK, (*required(C.ACK, version), ("transaction", "t")))
    assert session.receive(first) == []
    assert session.receive(ack) == []
    outside = _send(None, b"now")
    assert session.receive(outside) == [outside]
    assert session.receive(second) == []
    commit = Frame(C.COMMIT, (("transaction", "t"),))
    assert session.receive(commit) == [first, ack, second, commit]
    # The transaction is over.
    with pytest.raises(InvalidFrame) as info:
        session.receive(_send("t"))
    assert info.value.message == "unknown transaction"


def test_nack_is_held_too() -> None:
    session = connected("1.2")
    session.receive(Frame(C.BEGIN, (("transaction", "t"),)))
    nack = Frame(C.NACK, (("id", "1"), ("transaction", "t")))
    assert session.receive(nack) == []
    commit = Frame(C.COMMIT, (("transaction", "t"),))
    assert session.receive(commit) == [nack, commit]


def test_abort_discards() -> None:
    session = connected()
    session.receive(Frame(C.BEGIN, (("transaction", "t"),)))
    assert session.receive(_send("t")) == []
    abort = Frame(C.ABORT, (("transaction", "t"),))
    assert session.receive(abort) == [abort]
    with pytest.raises(InvalidFrame) as info:
        session.receive(Frame(C.COMMIT, (("transaction", "t"),)))
    assert info.value.message == "unknown transaction"


def test_transactions_are_independent() -> None:
    session = connected()
    session.receive(Frame(C.BEGIN, (("transaction", "a"),)))
    session.receive(Frame(C.BEGIN, (("transaction", "b"),)))
    in_a, in_b = _send("a", b"a"), _send("b", b"b")
    assert session.receive(in_a) == []
    assert session.receive(in_b) == []
    abort_a = Frame(C.ABORT, (("transaction", "a"),))
    assert session.receive(abort_a) == [abort_a]
    commit_b = Frame(C.COMMIT, (("transaction", "b"),))
    assert session.receive(commit_b) == [in_b, commit_b]


def test_transaction_name_can_be_reused_after_commit() -> None:
    session = connected()
    begin = Frame(C.BEGIN, (("transaction", "t"),))
    session.receive(begin)
    session.receive(Frame(C.COMMIT, (("transaction", "t"),)))
    assert session.receive(begin) == [begin]


@pytest.mark.parametrize(
    "frame",
    [
        _send("ghost"),
        Frame(C.ACK, (("id", "1"), ("transaction", "ghost"))),
        Frame(C.COMMIT, (("transaction", "ghost"),)),
        Frame(C.ABORT, (("transaction", "ghost"),)),
    ],
)
def test_unknown_transaction(frame: Frame) -> None:
    session = connected()
    with pytest.raises(InvalidFrame) as info:
        session.receive(frame)
    assert info.value.message == "unknown transaction"


def test_duplicate_begin() -> None:
    session = connected()
    session.receive(Frame(C.BEGIN, (("transaction", "t"),)))
    with pytest.raises(InvalidFrame) as info:
        session.receive(Frame(C.BEGIN, (("transaction", "t"),)))
    assert info.value.message == "transaction already begun"


def test_max_transaction_frames_counts_every_transaction() -> None:
    session = connected(max_transaction_frames=3)
    session.receive(Frame(C.BEGIN, (("transaction", "a"),)))
    session.receive(Frame(C.BEGIN, (("transaction", "b"),)))
    assert session.receive(_send("a")) == []
    assert session.receive(_send("b")) == []
    assert session.receive(_send("a")) == []
    with pytest.raises(LimitExceeded) as info:
        session.receive(_send("b"))
    assert info.value.message == "transaction too large"
    # Frames outside transactions are not limited.
    assert session.receive(_send()) == [_send()]


def test_max_transaction_frames_frees_on_commit() -> None:
    session = connected(max_transaction_frames=1)
    session.receive(Frame(C.BEGIN, (("transaction", "a"),)))
    assert session.receive(_send("a")) == []
    session.receive(Frame(C.COMMIT, (("transaction", "a"),)))
    session.receive(Frame(C.BEGIN, (("transaction", "a"),)))
    assert session.receive(_send("a")) == []


def test_disconnect_discards_transactions() -> None:
    session = connected()
    session.receive(Frame(C.BEGIN, (("transaction", "t"),)))
    session.receive(_send("t"))
    disconnect = Frame(C.DISCONNECT, (("receipt", "bye"),))
    assert session.receive(disconnect) == [disconnect]
    assert session.state is State.CLOSED
    assert session._transactions == {}


def test_close_discards_transactions() -> None:
    session = connected()
    session.receive(Frame(C.BEGIN, (("transaction", "t"),)))
    session.receive(_send("t"))
    session.close()
    assert session.state is State.CLOSED
    assert session._transactions == {}


# --- bytes in: receive_data ------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_connect_not_unescaped_but_later_frames_are(version: str) -> None:
    session = ServerSession()
    data = (
        f"CONNECT\naccept-version:{version}\nlogin:a\\cb\npasscode:p\\tq\n\n\x00".encode()
        + b"SEND\ndestination:/a\\cb\\nc\n\n\x00"
    )
    pairs = list(session.receive_data(data))
    assert [frame for frame, _ in pairs] == [
        Frame(
            C.CONNECT,
            (("accept-version", version), ("login", "a\\cb"), ("passcode", "p\\tq")),
        ),
        Frame(C.SEND, (("destination", "/a:b\nc"),)),
    ]


def test_parser_version_switches_for_frame_already_partly_received() -> None:
    session = ServerSession()
    connect = b"CONNECT\naccept-version:1.2\n\n\x00"
    send = b"SEND\ndestination:/a\\r\n\n\x00"
    cut = len(connect) + 10  # inside the SEND headers
    data = connect + send
    pairs = list(session.receive_data(data[:cut])) + list(session.receive_data(data[cut:]))
    assert [frame for frame, _ in pairs][1] == Frame(C.SEND, (("destination", "/a\r"),))


def test_1_0_session_does_not_unescape() -> None:
    session = ServerSession()
    data = b"CONNECT\n\n\x00SEND\ndestination:/a\\cb\\t\n\n\x00"
    frames = [frame for frame, _ in session.receive_data(data)]
    assert frames[1] == Frame(C.SEND, (("destination", "/a\\cb\\t"),))


def test_1_1_session_refuses_carriage_return_escape() -> None:
    session = ServerSession()
    data = b"CONNECT\naccept-version:1.1\n\n\x00SEND\ndestination:/a\\r\n\n\x00"
    pairs, error = receive_until_error(session, [data])
    assert isinstance(error, MalformedFrame)
    assert [frame.command for frame, _ in pairs] == [C.CONNECT]
    assert session.state is State.CLOSED


def test_receive_data_yields_effects_and_skips_heart_beats() -> None:
    session = ServerSession()
    data = (
        b"\n\nCONNECT\naccept-version:1.2\n\n\x00\n"
        b"BEGIN\ntransaction:t\n\n\x00\r\n"
        b"SEND\ndestination:/q\ntransaction:t\n\nx\x00\n"
        b"COMMIT\ntransaction:t\n\n\x00\n"
    )
    pairs = list(session.receive_data(data))
    commands = [(frame.command, [effect.command for effect in effects]) for frame, effects in pairs]
    assert commands == [
        (C.CONNECT, [C.CONNECT]),
        (C.BEGIN, [C.BEGIN]),
        (C.SEND, []),
        (C.COMMIT, [C.SEND, C.COMMIT]),
    ]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (b"BOGUS\n\n\x00", MalformedFrame),
        (b"SEND\n\n\x00", InvalidFrame),  # no destination
        (b"CONNECT\n\n\x00", InvalidFrame),  # already connected
        (b"SEND\n" + b"h:v\n" * 65 + b"\n\x00", LimitExceeded),
    ],
)
def test_receive_data_closes_session_on_error(bad: bytes, error: type[ProtocolError]) -> None:
    session = ServerSession()
    session_data = (
        b"CONNECT\naccept-version:1.2\n\n\x00BEGIN\ntransaction:t\n\n\x00"
        b"SEND\ndestination:/q\n\nok\x00"
    )
    tail = b"SEND\ndestination:/q\n\n\x00"
    pairs, raised = receive_until_error(session, [session_data + bad + tail])
    assert isinstance(raised, error)
    assert [frame.command for frame, _ in pairs] == [C.CONNECT, C.BEGIN, C.SEND]
    assert session.state is State.CLOSED
    assert session._transactions == {}


def test_receive_data_closes_on_unsupported_version() -> None:
    session = ServerSession()
    with pytest.raises(UnsupportedVersion) as info:
        list(session.receive_data(b"CONNECT\naccept-version:2.0\nreceipt:r\n\n\x00"))
    assert session.state is State.CLOSED
    assert error_frame(info.value) == Frame(
        C.ERROR,
        (
            ("message", "unsupported protocol version"),
            ("receipt-id", "r"),
            ("version", "1.0,1.1,1.2"),
            ("content-type", "text/plain"),
        ),
        b"Supported protocol versions are 1.0,1.1,1.2",
    )


def test_receive_data_uses_limits() -> None:
    session = ServerSession(Limits(max_frame_size=64))
    with pytest.raises(LimitExceeded):
        list(session.receive_data(b"CONNECT\n\n\x00SEND\ndestination:/q\n\n" + b"x" * 64 + b"\x00"))
    assert session.state is State.CLOSED


def test_bad_heart_beat_digits_close_the_session() -> None:
    session = ServerSession()
    with pytest.raises(InvalidFrame):
        list(session.receive_data("CONNECT\nheart-beat:\u00b2,0\n\n\x00".encode()))
    assert session.state is State.CLOSED


def test_huge_content_length_digits_close_the_session() -> None:
    session = ServerSession()
    data = b"CONNECT\n\n\x00SEND\ncontent-length:" + b"1" * 4301 + b"\n\n"
    with pytest.raises(ProtocolError):
        list(session.receive_data(data))
    assert session.state is State.CLOSED


@pytest.mark.parametrize(
    "data",
    [
        b"CONNECT\n\n\x00SEND\nreceipt:a\rb\n\n\x00",
        b"CONNECT\n\n\x00SEND\nreceipt:a\x00b\n\n\x00",
        b"CONNECT\naccept-version:2.0\nreceipt:a\rb\n\n\x00",
    ],
)
def test_receipt_that_cannot_be_echoed_is_refused(data: bytes) -> None:
    """A receipt the negotiated version cannot carry back is a protocol error
    whose ERROR frame leaves it out, so the ERROR itself can be written."""
    session = ServerSession()
    _, error = receive_until_error(session, [data])
    assert error is not None
    assert error.receipt_id is None
    wire = session.fail(error)
    assert wire.startswith(b"ERROR\n")


def test_receipt_echoable_in_1_2_is_accepted() -> None:
    session = ServerSession()
    data = b"CONNECT\naccept-version:1.2\n\n\x00SEND\ndestination:/q\nreceipt:a\\rb\n\n\x00"
    (_, (send, _)) = list(session.receive_data(data))
    receipt = send.get("receipt")
    assert receipt == "a\rb"
    assert session.send(receipt_frame(receipt)) == b"RECEIPT\nreceipt-id:a\\rb\n\n\x00"


# --- CONNECTED, ERROR and RECEIPT frames -----------------------------------------------------


@pytest.mark.parametrize(
    ("heart_beat", "policy", "offer", "negotiated"),
    [
        (None, HeartBeatPolicy(), "0,10000", (0, 0)),
        ("0,0", HeartBeatPolicy(), "0,10000", (0, 0)),
        ("0,5000", HeartBeatPolicy(), "5000,10000", (5000, 0)),
        ("4000,500", HeartBeatPolicy(), "1000,10000", (1000, 10000)),
        ("20000,0", HeartBeatPolicy(), "0,10000", (0, 20000)),
        ("1000,1000", HeartBeatPolicy(send_floor_ms=0, receive_ms=0), "1000,0", (1000, 0)),
    ],
)
def test_heart_beat_negotiation_and_connected_frame(
    heart_beat: str | None,
    policy: HeartBeatPolicy,
    offer: str,
    negotiated: tuple[int, int],
) -> None:
    session = ServerSession(heart_beat=policy)
    hb: Headers = () if heart_beat is None else (("heart-beat", heart_beat),)
    session.receive(Frame(C.CONNECT, (("accept-version", "1.1,1.2"), *hb)))
    assert session.heart_beat == negotiated
    assert session.connected_frame(session="s-1", server="gw/0.1") == Frame(
        C.CONNECTED,
        (("version", "1.2"), ("heart-beat", offer), ("server", "gw/0.1"), ("session", "s-1")),
    )


@pytest.mark.parametrize("heart_beat", ["x", "1", "1,2,3", "-1,0", ""])
def test_connect_with_bad_heart_beat(heart_beat: str) -> None:
    session = ServerSession()
    with pytest.raises(InvalidFrame) as info:
        list(session.receive_data(f"CONNECT\nheart-beat:{heart_beat}\n\n\x00".encode()))
    assert info.value.message == "invalid heart-beat header"
    assert session.state is State.CLOSED


@pytest.mark.parametrize("version", VERSIONS)
def test_connected_frame_serializes_in_every_version(version: str) -> None:
    session = connected(version)
    frame = session.connected_frame(session="s:1", server="gw\\1")
    assert (
        session.send(frame)
        == (
            f"CONNECTED\nversion:{version}\nheart-beat:0,10000\nserver:gw\\1\nsession:s:1\n\n\x00"
        ).encode()
    )


def test_session_send_uses_negotiated_version() -> None:
    message = Frame(C.MESSAGE, (("subscription", "a:b"),))
    assert connected("1.0").send(message) == b"MESSAGE\nsubscription:a:b\n\n\x00"
    assert connected("1.2").send(message) == b"MESSAGE\nsubscription:a\\cb\n\n\x00"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            InvalidFrame("missing header", details="SEND requires destination"),
            Frame(
                C.ERROR,
                (("message", "missing header"), ("content-type", "text/plain")),
                b"SEND requires destination",
            ),
        ),
        (
            MalformedFrame("bad", details="caf\u00e9", receipt_id="r-9"),
            Frame(
                C.ERROR,
                (("message", "bad"), ("receipt-id", "r-9"), ("content-type", "text/plain")),
                "caf\u00e9".encode(),
            ),
        ),
        (
            LimitExceeded("big", headers=(("content-type", "application/json"), ("x", "y"))),
            Frame(
                C.ERROR,
                (("message", "big"), ("content-type", "application/json"), ("x", "y")),
            ),
        ),
    ],
)
def test_error_frame(error: ProtocolError, expected: Frame) -> None:
    assert error_frame(error) == expected


def test_receipt_frame() -> None:
    assert receipt_frame("77") == Frame(C.RECEIPT, (("receipt-id", "77"),))
    assert serialize(receipt_frame("a:b"), "1.2") == b"RECEIPT\nreceipt-id:a\\cb\n\n\x00"


# --- a whole conversation through bytes ------------------------------------------------------


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "byte-by-byte"])
@pytest.mark.parametrize("version", VERSIONS)
def test_conversation(version: str, bytewise: bool) -> None:
    client = Client(version=version)
    connect = Frame(
        C.CONNECT, (*required(C.CONNECT, version), ("host", "h"), ("heart-beat", "0,2000"))
    )
    assert [effects for _, effects in client.send_frame(connect, bytewise=bytewise)] == [[connect]]
    assert client.session.version == version
    assert client.session.heart_beat == (2000, 0)

    subscribe = Frame(C.SUBSCRIBE, (("destination", "/topic/x"), ("id", "s:1"), ("ack", "client")))
    if version == "1.0":
        subscribe = subscribe.without("id")
    send = Frame(C.SEND, (("destination", "/topic/x"), ("receipt", "r\\1")), b"hi\x00there")
    ack = Frame(C.ACK, required(C.ACK, version))
    disconnect = Frame(C.DISCONNECT, (("receipt", "bye"),))
    for frame in (subscribe, send, ack, disconnect):
        pairs = client.send_frame(frame, bytewise=bytewise)
        expected = frame
        if frame.body:
            expected = Frame(
                frame.command,
                (*frame.headers, ("content-length", str(len(frame.body)))),
                frame.body,
            )
        assert pairs == [(expected, [expected])]
    assert client.session.state is State.CLOSED


def test_connected_client_helper() -> None:
    for version in VERSIONS:
        client = connected_client(version)
        assert client.send(C.SEND, ("destination", "/q")) == [
            Frame(C.SEND, (("destination", "/q"),))
        ]


# --- sending: send() and fail() update the state --------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_send_encodes_in_the_negotiated_version(version: str) -> None:
    session = connected(version)
    wire = session.send(receipt_frame("a:b"))
    assert wire == serialize(receipt_frame("a:b"), version)
    assert session.state is State.CONNECTED
    assert session.error_sent is None


@pytest.mark.parametrize("command", ORDERED_CLIENT)
def test_send_refuses_client_frames(command: Command) -> None:
    with pytest.raises(LocalProtocolError):
        connected().send(Frame(command, required(command)))


@pytest.mark.parametrize("state", ["connecting", "connected", "disconnected"])
def test_error_closes_the_session_and_nothing_follows(state: str) -> None:
    """STOMP 1.2 §ERROR: after an ERROR the server MUST close the connection."""
    session = ServerSession() if state == "connecting" else connected()
    if state == "disconnected":
        session.receive(Frame(C.DISCONNECT, (("receipt", "bye"),)))
    error = InvalidFrame("bad", details="why", receipt_id="r")
    assert session.fail(error) == serialize(error_frame(error), session.version)
    assert session.state is State.CLOSED
    assert session.error_sent == error_frame(error)
    for frame in (receipt_frame("bye"), error_frame(error), Frame(C.MESSAGE)):
        with pytest.raises(LocalProtocolError, match="after ERROR"):
            session.send(frame)


def test_an_error_frame_sent_by_hand_closes_too() -> None:
    session = connected()
    session.receive(Frame(C.BEGIN, (("transaction", "t"),)))
    session.send(Frame(C.ERROR, (("message", "bye"),)))
    assert session.state is State.CLOSED
    assert session._transactions == {}
    with pytest.raises(LocalProtocolError):
        session.send(receipt_frame("r"))


def test_receipt_for_a_disconnect_is_sent_after_the_session_closed() -> None:
    session = connected()
    (disconnect,) = session.receive(Frame(C.DISCONNECT, (("receipt", "bye"),)))
    assert session.state is State.CLOSED
    receipt = receipt_for(disconnect)
    assert receipt is not None
    assert session.send(receipt) == b"RECEIPT\nreceipt-id:bye\n\n\x00"


def test_unencodable_error_leaves_the_session_open() -> None:
    session = connected("1.0")
    with pytest.raises(LocalProtocolError):
        session.send(Frame(C.ERROR, (("message", "a\nb"),)))
    assert session.state is State.CONNECTED
    assert session.error_sent is None


# --- receipts -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ORDERED_CLIENT)
def test_receipt_for(command: Command) -> None:
    """STOMP 1.2 §Header receipt: any client frame but CONNECT may ask for a RECEIPT."""
    frame = Frame(command, (*required(command), ("receipt", "r")))
    expected = None if command in (C.CONNECT, C.STOMP) else receipt_frame("r", (("x", "1"),))
    assert receipt_for(frame, (("x", "1"),)) == expected
    assert receipt_for(frame.without("receipt")) is None


# --- bytes before CONNECT -------------------------------------------------------------------


def test_bytes_before_connect_are_bounded() -> None:
    session = ServerSession(Limits(max_bytes_before_connect=10))
    assert list(session.receive_data(b"\n" * 10)) == []  # heart-beats count too
    with pytest.raises(LimitExceeded) as info:
        list(session.receive_data(b"\n"))
    assert info.value.message == "too much data before CONNECT"
    assert info.value.details == "at most 10 bytes"
    assert info.value.receipt_id is None
    assert session.state is State.CLOSED


def test_a_connect_in_pieces_counts_every_piece() -> None:
    connect = b"CONNECT\naccept-version:1.2\n\n\x00"
    session = ServerSession(Limits(max_bytes_before_connect=len(connect) - 1))
    _, error = receive_until_error(session, [bytes([b]) for b in connect])
    assert isinstance(error, LimitExceeded)


def test_the_chunk_holding_the_connect_counts_whole_and_later_ones_not() -> None:
    connect = b"CONNECT\naccept-version:1.2\n\n\x00"
    send = b"SEND\ndestination:/q\n\n\x00"
    session = ServerSession(Limits(max_bytes_before_connect=len(connect + send)))
    assert len(list(session.receive_data(connect + send))) == 2
    assert len(list(session.receive_data(send * 10))) == 10
    over = ServerSession(Limits(max_bytes_before_connect=len(connect + send) - 1))
    with pytest.raises(LimitExceeded):
        list(over.receive_data(connect + send))


def test_bytes_before_connect_default_to_16_kib() -> None:
    session = ServerSession()
    assert list(session.receive_data(b"\n" * 16 * 1024)) == []
    with pytest.raises(LimitExceeded):
        list(session.receive_data(b"\n"))


# --- the session's subscriptions ------------------------------------------------------------


def test_subscribe_with_a_live_id_is_refused_on_receipt() -> None:
    session = connected()
    subscribe = Frame(C.SUBSCRIBE, (("destination", "/a"), ("id", "s"), ("receipt", "r")))
    admission = session.subscriptions.admit(subscribe)
    session.subscriptions.add(Record.admitted(admission))
    with pytest.raises(InvalidFrame) as info:
        session.receive(subscribe)
    assert info.value.message == "duplicate subscription id"
    assert info.value.receipt_id == "r"


def test_session_passes_its_policy_and_version_to_the_subscriptions() -> None:
    policy = SubscriptionPolicy(duplicates="reject", max_subscriptions=3, max_pending_acks=5)
    session = ServerSession(subscriptions=policy)
    assert session.subscriptions.policy is policy
    list(session.receive_data(b"CONNECT\naccept-version:1.1\n\n\x00"))
    assert session.subscriptions.version == "1.1"


def test_close_forgets_the_subscriptions() -> None:
    session = connected()
    subscribe = Frame(C.SUBSCRIBE, (("destination", "/a"), ("id", "s"), ("ack", "client")))
    admission = session.subscriptions.admit(subscribe)
    subscription = Record.admitted(admission)
    session.subscriptions.add(subscription)
    session.subscriptions.deliver(subscription, "m")
    session.close()
    assert (len(session.subscriptions), session.subscriptions.pending_acks) == (0, 0)
