from __future__ import annotations

# Shared helpers for the protocol tests: feeding parsers, a tiny client, a subscription.
import dataclasses
import itertools
import random
from collections.abc import Iterable

from protocol import (
    Admission,
    Command,
    Frame,
    HeartBeat,
    Limits,
    Parser,
    ProtocolError,
    ServerSession,
    serialize,
)

Event = Frame | HeartBeat

HB = HeartBeat()


def whole(data: bytes) -> list[bytes]:
    """Split nothing: one chunk."""
    return [data]


def byte_by_byte(data: bytes) -> list[bytes]:
    """Split ``data`` into one-byte chunks."""
    return [data[i : i + 1] for i in range(len(data))]


def random_splits(data: bytes, seed: int) -> list[bytes]:
    """Split ``data`` at random points chosen by ``seed``."""
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(0, 8))))
    return split_at(data, cuts)


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Split ``data`` at the offsets in ``cuts`` (sorted or not, clamped)."""
    points = sorted({min(max(cut, 0), len(data)) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def parse(
    chunks: Iterable[bytes], version: str = "1.0", limits: Limits | None = None
) -> list[Event]:
    """Feed ``chunks`` to a fresh parser and return every event."""
    parser = Parser(limits, version)
    events: list[Event] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events


def parse_bytes(data: bytes, version: str = "1.0", limits: Limits | None = None) -> list[Event]:
    """Feed ``data`` in one chunk and return every event."""
    return parse([data], version, limits)


def parse_until_error(
    chunks: Iterable[bytes], version: str = "1.0", limits: Limits | None = None
) -> tuple[list[Event], ProtocolError | None]:
    """Return the events yielded before a protocol error, and that error."""
    parser = Parser(limits, version)
    events: list[Event] = []
    try:
        for chunk in chunks:
            for event in parser.feed(chunk):
                events.append(event)
    except ProtocolError as exc:
        return events, exc
    return events, None


def receive_until_error(
    session: ServerSession, chunks: Iterable[bytes]
) -> tuple[list[tuple[Frame, list[Frame]]], ProtocolError | None]:
    """Feed ``chunks`` to ``session``; return the pairs before an error, and the error."""
    pairs: list[tuple[Frame, list[Frame]]] = []
    try:
        for chunk in chunks:
            for pair in session.receive_data(chunk):
                pairs.append(pair)
    except ProtocolError as exc:
        return pairs, exc
    return pairs, None


class Client:
    """A minimal STOMP client that talks to a :class:`ServerSession` through bytes."""

    def __init__(self, session: ServerSession | None = None, version: str = "1.2") -> None:
        self.session = session if session is not None else ServerSession()
        self.version = version

    def send_frame(
        self, frame: Frame, *, bytewise: bool = False
    ) -> list[tuple[Frame, list[Frame]]]:
        """Serialize ``frame`` in the client's version and feed it to the session."""
        data = serialize(frame, self.version)
        chunks = byte_by_byte(data) if bytewise else [data]
        return [pair for chunk in chunks for pair in self.session.receive_data(chunk)]

    def send(self, command: Command, *headers: tuple[str, str], body: bytes = b"") -> list[Frame]:
        """Send one frame and return the effects the session hands back."""
        pairs = self.send_frame(Frame(command, headers, body))
        assert len(pairs) == 1
        return pairs[0][1]

    def connect(self, *headers: tuple[str, str]) -> list[Frame]:
        """Send CONNECT offering exactly this client's version (none for 1.0)."""
        offer = () if self.version == "1.0" else (("accept-version", self.version),)
        return self.send(Command.CONNECT, *offer, ("host", "localhost"), *headers)


def connected_client(version: str, session: ServerSession | None = None) -> Client:
    """Return a client whose session is connected in ``version``."""
    client = Client(session, version)
    client.connect()
    assert client.session.version == version
    return client


@dataclasses.dataclass(eq=False)
class Record:
    """A subscription as a caller of :class:`protocol.Subscriptions` keeps it."""

    id: str
    destination: str
    ack_mode: str
    head: bytes = b""
    pending: dict[str, None] = dataclasses.field(default_factory=dict)

    @classmethod
    def admitted(cls, admission: Admission) -> Record:
        return cls(admission.id, admission.destination, admission.ack_mode, admission.head)
