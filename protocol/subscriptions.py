"""
One session's subscriptions and the acknowledgements they await, without I/O.

:class:`Subscriptions` holds every rule that changes this state: which
SUBSCRIBE is admitted (subscription ids, the duplicate-destination policy, the
cap on subscriptions), what UNSUBSCRIBE removes, the key an ACK or NACK names
in each STOMP version, cumulative ACK in ``client`` mode, and the cap on
messages awaiting acknowledgement.

Frames are checked and applied in two steps (:meth:`Subscriptions.admit` then
:meth:`Subscriptions.add`; :meth:`Subscriptions.check_ack` then
:meth:`Subscriptions.acknowledge`) so that a caller can check every frame a
COMMIT releases before any takes effect, and let the application refuse a
SUBSCRIBE in between.

"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from typing import Literal, Protocol

from .errors import InvalidFrame, LimitExceeded, LocalProtocolError, Refused
from .frames import Frame
from .serializer import message_head

__all__ = [
    "Admission",
    "DuplicatePolicy",
    "PendingAck",
    "Subscription",
    "SubscriptionPolicy",
    "Subscriptions",
]

# What a second SUBSCRIBE to a destination the session already subscribed to does.
DuplicatePolicy = Literal["replace", "allow", "reject"]


@dataclasses.dataclass(frozen=True, slots=True)
class SubscriptionPolicy:
    """
    The server's rules for one session's subscriptions.

    Attributes:
        duplicates: A SUBSCRIBE to a destination already subscribed to
            replaces the older subscriptions, is allowed beside them, or is
            rejected with an ERROR.
        max_subscriptions: Live subscriptions per session; a SUBSCRIBE over
            it is refused (:class:`~protocol.errors.Refused`).
        max_pending_acks: Messages awaiting ACK or NACK per session; a
            delivery over it is a :class:`~protocol.errors.LimitExceeded`.

    """

    duplicates: DuplicatePolicy = "replace"
    max_subscriptions: int = 100
    max_pending_acks: int = 10_000


class Subscription(Protocol):
    """
    One live SUBSCRIBE, as the caller keeps it (with whatever else it needs):
    made from an :class:`Admission`, with ``pending`` empty at first.
    """

    @property
    def id(self) -> str:
        """The subscription id, unique among the session's live ones."""

    @property
    def destination(self) -> str:
        """What was subscribed to."""

    @property
    def ack_mode(self) -> str:
        """``auto``, ``client`` or ``client-individual``."""

    @property
    def pending(self) -> dict[str, None]:
        """Keys of the messages delivered and not yet acknowledged, oldest first."""


@dataclasses.dataclass(frozen=True, slots=True)
class Admission:
    """
    A SUBSCRIBE that may take effect: the fields of its :class:`Subscription`
    (``head``: the start of every MESSAGE for it, see
    :func:`~protocol.message_head`), and the subscriptions it replaces (to
    remove before adding it).
    """

    id: str
    destination: str
    ack_mode: str
    head: bytes
    replaces: tuple[Subscription, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class PendingAck:
    """What an ACK or NACK names: an unacknowledged message of ``subscription``."""

    subscription: Subscription
    key: str


class Subscriptions:
    """
    The live subscriptions of one session and the messages they await
    acknowledgements for.

    Args:
        version: The negotiated STOMP version; set :attr:`version` on CONNECT.
        policy: The server's rules.

    """

    def __init__(self, version: str = "1.0", policy: SubscriptionPolicy | None = None) -> None:
        self.version = version
        self.policy = policy or SubscriptionPolicy()
        self._live: dict[str, Subscription] = {}
        # Ack key -> the subscription whose message it names (the latest one,
        # when two STOMP 1.0 subscriptions received the same message-id).
        self._acks: dict[str, Subscription] = {}
        self._ack_ids = itertools.count()

    def __len__(self) -> int:
        """Return the number of live subscriptions."""
        return len(self._live)

    def __iter__(self) -> Iterator[Subscription]:
        """Iterate over the live subscriptions, oldest first."""
        return iter(self._live.values())

    @property
    def pending_acks(self) -> int:
        """Return how many ack keys await an ACK or NACK."""
        return len(self._acks)

    def of(self, destination: str) -> list[Subscription]:
        """Return the live subscriptions to ``destination``, oldest first."""
        return [sub for sub in self._live.values() if sub.destination == destination]

    # SUBSCRIBE.

    def check_id(self, frame: Frame) -> str:
        """
        Return the id a SUBSCRIBE names.

        STOMP 1.0 subscriptions may omit it: the destination stands in.

        Raises:
            InvalidFrame: The id is live already (STOMP 1.2 §SUBSCRIBE: the
                id identifies the subscription within the connection).

        """
        subscription_id = frame.get("id", frame.get("destination", ""))
        if subscription_id in self._live:
            raise InvalidFrame(
                "duplicate subscription id",
                details=f"subscription {subscription_id!r} is already live in this session",
            )
        return subscription_id

    def admit(self, frame: Frame) -> Admission:
        """
        Check a SUBSCRIBE against the live subscriptions and the policy.

        Raises:
            InvalidFrame: The id is live already, the destination is
                subscribed to under ``duplicates="reject"``, or the id
                cannot be sent back in the negotiated version.
            Refused: The session has ``max_subscriptions`` already (a
                replacing SUBSCRIBE adds none).

        """
        subscription_id = self.check_id(frame)
        destination = frame.get("destination", "")
        existing = self.of(destination)
        duplicates = self.policy.duplicates
        if existing and duplicates == "reject":
            raise InvalidFrame(
                "duplicate subscription",
                details=f"already subscribed to {destination!r} as {existing[0].id!r}",
            )
        limit = self.policy.max_subscriptions
        if len(self._live) >= limit and not (existing and duplicates == "replace"):
            raise Refused(f"too many subscriptions: at most {limit} per session")
        try:
            head = message_head(subscription_id, self.version)
        except LocalProtocolError:
            raise InvalidFrame(
                "invalid subscription id",
                details=f"{subscription_id!r} cannot be sent back in STOMP {self.version}",
            ) from None
        return Admission(
            id=subscription_id,
            destination=destination,
            ack_mode=frame.get("ack", "auto"),
            head=head,
            replaces=tuple(existing) if duplicates == "replace" else (),
        )

    def add(self, subscription: Subscription) -> None:
        """
        Make ``subscription`` live (admitted, and the subscriptions its
        admission replaces removed already).

        Raises:
            LocalProtocolError: Its id is live already.

        """
        if subscription.id in self._live:
            raise LocalProtocolError(f"subscription {subscription.id!r} is live already")
        self._live[subscription.id] = subscription

    # UNSUBSCRIBE.

    def unsubscribe_id(self, frame: Frame) -> str:
        """Return the id an UNSUBSCRIBE names (STOMP 1.0: or its destination)."""
        return frame.get("id") or frame.get("destination", "")

    def remove(self, subscription_id: str) -> Subscription | None:
        """
        Remove the live subscription ``subscription_id`` and forget the
        acknowledgements it awaits; return it, or None when no such id is
        live (an id replaced by a later SUBSCRIBE, or never live): the
        client's wish holds, and nothing changes.
        """
        subscription = self._live.pop(subscription_id, None)
        if subscription is not None:
            for key in subscription.pending:
                self._forget(subscription, key)
        return subscription

    def clear(self) -> None:
        """The session ended: nothing is live, nothing awaits acknowledgement."""
        self._live.clear()
        self._acks.clear()

    # MESSAGE.

    def deliver(self, subscription: Subscription, message_id: str) -> str | None:
        """
        Record a MESSAGE about to be sent for ``subscription``.

        Returns:
            The MESSAGE's ``ack`` header in STOMP 1.2 when the subscription's
            ack mode is ``client`` or ``client-individual`` (STOMP 1.2
            §MESSAGE: such a MESSAGE MUST carry one), an id unique in the
            session; None otherwise.

        Raises:
            LimitExceeded: ``max_pending_acks`` messages await acknowledgement.

        """
        if subscription.ack_mode == "auto":
            return None
        limit = self.policy.max_pending_acks
        if len(self._acks) >= limit:
            raise LimitExceeded(
                "too many unacknowledged messages", details=f"at most {limit} may be pending"
            )
        if self.version == "1.2":
            ack = key = str(next(self._ack_ids))
        else:
            ack, key = None, self._message_key(subscription.id, message_id)
        subscription.pending[key] = None
        self._acks[key] = subscription
        return ack

    # ACK and NACK.

    def check_ack(self, frame: Frame) -> PendingAck:
        """
        Return the unacknowledged message an ACK or NACK names.

        Raises:
            InvalidFrame: No message awaits acknowledgement under that key.

        """
        key = self._ack_key(frame)
        subscription = self._acks.get(key)
        if subscription is None:
            raise InvalidFrame("unknown ack id", details=f"no unacknowledged message {key!r}")
        return PendingAck(subscription, key)

    def acknowledge(self, pending: PendingAck) -> None:
        """
        Settle the message ``pending`` names (an ACK or a NACK alike).

        In ``client`` mode every older message of the subscription goes with
        it (STOMP 1.2 §SUBSCRIBE ack: the ACK is cumulative); in
        ``client-individual`` mode only that one. A message settled already
        (earlier in the same COMMIT, or by a cumulative ACK) is left alone.
        """
        subscription, key = pending.subscription, pending.key
        if key not in subscription.pending:
            return
        if subscription.ack_mode != "client":
            del subscription.pending[key]
            self._forget(subscription, key)
            return
        while subscription.pending:
            oldest = next(iter(subscription.pending))
            del subscription.pending[oldest]
            self._forget(subscription, oldest)
            if oldest == key:
                return

    def _forget(self, subscription: Subscription, key: str) -> None:
        # In STOMP 1.0 two subscriptions may share a key (the message-id):
        # the index names the latest, and each forgets only its own entry.
        if self._acks.get(key) is subscription:
            del self._acks[key]

    def _ack_key(self, frame: Frame) -> str:
        # STOMP 1.2 §ACK: the id header matches the MESSAGE's ack header;
        # STOMP 1.1 names subscription and message-id, STOMP 1.0 message-id.
        if self.version == "1.2":
            return frame.get("id", "")
        return self._message_key(frame.get("subscription", ""), frame.get("message-id", ""))

    def _message_key(self, subscription_id: str, message_id: str) -> str:
        """The key an ACK names before 1.2: message-id, with subscription in 1.1."""
        return f"{subscription_id}\n{message_id}" if self.version == "1.1" else message_id
