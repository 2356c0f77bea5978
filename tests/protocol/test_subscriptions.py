"""
Tests for :mod:`protocol.subscriptions`: one session's subscriptions and acks.

Examples for each rule, then a hypothesis state machine that drives random
SUBSCRIBE / UNSUBSCRIBE / deliver / ACK / NACK / COMMIT sequences in every
version, ack mode and duplicate policy against a small reference model.
"""

from __future__ import annotations

import dataclasses
import typing

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from protocol import (
    Command,
    DuplicatePolicy,
    Frame,
    InvalidFrame,
    LimitExceeded,
    LocalProtocolError,
    PendingAck,
    Refused,
    SubscriptionPolicy,
    Subscriptions,
    message_head,
)

from ._helpers import Record

C = Command
VERSIONS = ("1.0", "1.1", "1.2")
DUPLICATE_POLICIES = typing.get_args(DuplicatePolicy)


def subscribe_frame(destination: str, subscription_id: str | None, ack: str | None = None) -> Frame:
    headers = [("destination", destination)]
    if subscription_id is not None:
        headers.append(("id", subscription_id))
    if ack is not None:
        headers.append(("ack", ack))
    return Frame(C.SUBSCRIBE, tuple(headers))


def subscribe(
    subscriptions: Subscriptions, destination: str, subscription_id: str, ack: str = "auto"
) -> Record:
    """Admit and add a SUBSCRIBE as a caller does: replaced subscriptions go first."""
    admission = subscriptions.admit(subscribe_frame(destination, subscription_id, ack))
    for old in admission.replaces:
        subscriptions.remove(old.id)
    subscription = Record.admitted(admission)
    subscriptions.add(subscription)
    return subscription


def ack_frame(version: str, subscription_id: str, key: str, command: Command = C.ACK) -> Frame:
    """The ACK a client of ``version`` sends for the message it knows by ``key``."""
    if version == "1.2":
        return Frame(command, (("id", key),))
    if version == "1.1":
        return Frame(command, (("subscription", subscription_id), ("message-id", key)))
    return Frame(command, (("message-id", key),))


def ack(subscriptions: Subscriptions, frame: Frame) -> None:
    subscriptions.acknowledge(subscriptions.check_ack(frame))


def deliver_keys(subscriptions: Subscriptions, subscription: Record, count: int) -> list[str]:
    """Deliver ``count`` messages; return what the client names them by in its ACKs."""
    keys = []
    for n in range(count):
        header = subscriptions.deliver(subscription, f"m-{n}")
        keys.append(header if header is not None else f"m-{n}")
    return keys


# --- SUBSCRIBE ------------------------------------------------------------------------------


def test_admission_carries_the_subscription_fields() -> None:
    subscriptions = Subscriptions("1.2")
    admission = subscriptions.admit(subscribe_frame("/topic/a", "s:1", "client"))
    assert (admission.id, admission.destination) == ("s:1", "/topic/a")
    assert admission.ack_mode == "client"
    assert admission.head == message_head("s:1", "1.2") == b"MESSAGE\nsubscription:s\\c1\n"
    assert admission.replaces == ()
    assert len(subscriptions) == 0  # admitted is not live yet


def test_ack_mode_defaults_to_auto() -> None:
    assert Subscriptions("1.2").admit(subscribe_frame("/a", "s")).ack_mode == "auto"


def test_1_0_id_defaults_to_the_destination() -> None:
    subscriptions = Subscriptions("1.0")
    assert subscriptions.check_id(subscribe_frame("/topic/a", None)) == "/topic/a"
    subscription = subscribe(subscriptions, "/topic/a", "/topic/a")
    assert list(subscriptions) == [subscription]
    with pytest.raises(InvalidFrame, match="duplicate subscription id"):
        subscriptions.admit(subscribe_frame("/topic/a", None))


@pytest.mark.parametrize("version", VERSIONS)
def test_duplicate_live_id_is_refused_until_unsubscribed(version: str) -> None:
    subscriptions = Subscriptions(version, SubscriptionPolicy(duplicates="allow"))
    subscribe(subscriptions, "/a", "s")
    with pytest.raises(InvalidFrame) as info:
        subscriptions.admit(subscribe_frame("/b", "s"))
    assert info.value.message == "duplicate subscription id"
    assert info.value.details == "subscription 's' is already live in this session"
    assert subscriptions.remove("s") is not None
    assert subscriptions.admit(subscribe_frame("/b", "s")).id == "s"


def test_replace_policy_names_every_older_subscription_to_the_destination() -> None:
    subscriptions = Subscriptions("1.2", SubscriptionPolicy(duplicates="allow"))
    first = subscribe(subscriptions, "/a", "1")
    subscribe(subscriptions, "/b", "2")
    second = subscribe(subscriptions, "/a", "3")
    subscriptions.policy = SubscriptionPolicy(duplicates="replace")
    assert subscriptions.admit(subscribe_frame("/a", "4")).replaces == (first, second)
    subscribe(subscriptions, "/a", "4")
    assert [s.id for s in subscriptions] == ["2", "4"]


def test_allow_policy_keeps_both() -> None:
    subscriptions = Subscriptions("1.2", SubscriptionPolicy(duplicates="allow"))
    subscribe(subscriptions, "/a", "1")
    subscribe(subscriptions, "/a", "2")
    assert [s.id for s in subscriptions.of("/a")] == ["1", "2"]


def test_reject_policy_refuses_with_an_error() -> None:
    subscriptions = Subscriptions("1.2", SubscriptionPolicy(duplicates="reject"))
    subscribe(subscriptions, "/a", "1")
    with pytest.raises(InvalidFrame) as info:
        subscriptions.admit(subscribe_frame("/a", "2"))
    assert info.value.message == "duplicate subscription"
    assert info.value.details == "already subscribed to '/a' as '1'"


@pytest.mark.parametrize("duplicates", DUPLICATE_POLICIES)
def test_subscription_cap(duplicates: str) -> None:
    policy = SubscriptionPolicy(duplicates=duplicates, max_subscriptions=2)  # type: ignore[arg-type]
    subscriptions = Subscriptions("1.2", policy)
    subscribe(subscriptions, "/a", "1")
    subscribe(subscriptions, "/b", "2")
    with pytest.raises(Refused) as info:
        subscriptions.admit(subscribe_frame("/c", "3"))
    assert info.value.reason == str(info.value) == "too many subscriptions: at most 2 per session"
    if duplicates == "replace":  # replacing adds none
        assert subscriptions.admit(subscribe_frame("/a", "3")).replaces[0].id == "1"
    elif duplicates == "allow":
        with pytest.raises(Refused):
            subscriptions.admit(subscribe_frame("/a", "3"))


def test_cap_of_zero_refuses_every_subscribe() -> None:
    subscriptions = Subscriptions("1.2", SubscriptionPolicy(max_subscriptions=0))
    with pytest.raises(Refused):
        subscriptions.admit(subscribe_frame("/a", "1"))


@pytest.mark.parametrize(
    ("version", "subscription_id"),
    [("1.0", "a\nb"), ("1.0", "a\0b"), ("1.1", "a\rb"), ("1.2", "a\0b")],
)
def test_id_that_cannot_be_sent_back_is_invalid(version: str, subscription_id: str) -> None:
    with pytest.raises(InvalidFrame) as info:
        Subscriptions(version).admit(subscribe_frame("/a", subscription_id))
    assert info.value.message == "invalid subscription id"
    assert info.value.details == f"{subscription_id!r} cannot be sent back in STOMP {version}"


def test_adding_a_live_id_is_a_caller_error() -> None:
    subscriptions = Subscriptions("1.2")
    subscribe(subscriptions, "/a", "s")
    with pytest.raises(LocalProtocolError):
        subscriptions.add(Record("s", "/b", "auto"))


# --- UNSUBSCRIBE ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((("id", "s"),), "s"),
        ((("id", "s"), ("destination", "/a")), "s"),
        ((("destination", "/a"),), "/a"),  # STOMP 1.0
        ((("id", ""), ("destination", "/a")), "/a"),
    ],
)
def test_unsubscribe_id(headers: tuple[tuple[str, str], ...], expected: str) -> None:
    assert Subscriptions("1.0").unsubscribe_id(Frame(C.UNSUBSCRIBE, headers)) == expected


def test_removing_an_id_not_live_changes_nothing() -> None:
    subscriptions = Subscriptions("1.2")
    subscription = subscribe(subscriptions, "/a", "new", "client")
    keys = deliver_keys(subscriptions, subscription, 2)
    assert subscriptions.remove("stale") is None
    assert list(subscriptions) == [subscription]
    assert list(subscription.pending) == keys
    assert subscriptions.pending_acks == 2


def test_removing_the_replaced_id_after_replace_is_a_no_op() -> None:
    subscriptions = Subscriptions("1.2")
    subscribe(subscriptions, "/a", "old")
    new = subscribe(subscriptions, "/a", "new")
    assert subscriptions.remove("old") is None
    assert list(subscriptions) == [new]


def test_remove_forgets_the_pending_acks() -> None:
    subscriptions = Subscriptions("1.2")
    subscription = subscribe(subscriptions, "/a", "s", "client")
    (key,) = deliver_keys(subscriptions, subscription, 1)
    assert subscriptions.remove("s") is subscription
    assert subscriptions.pending_acks == 0
    with pytest.raises(InvalidFrame, match="unknown ack id"):
        subscriptions.check_ack(ack_frame("1.2", "s", key))


def test_clear() -> None:
    subscriptions = Subscriptions("1.2")
    deliver_keys(subscriptions, subscribe(subscriptions, "/a", "s", "client"), 3)
    subscriptions.clear()
    assert (len(subscriptions), subscriptions.pending_acks) == (0, 0)


# --- MESSAGE and its ack header -------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_auto_mode_awaits_no_ack(version: str) -> None:
    subscriptions = Subscriptions(version, SubscriptionPolicy(max_pending_acks=0))
    subscription = subscribe(subscriptions, "/a", "s")
    assert subscriptions.deliver(subscription, "m") is None
    assert subscription.pending == {}


def test_1_2_ack_ids_are_unique_in_the_session() -> None:
    subscriptions = Subscriptions("1.2", SubscriptionPolicy(duplicates="allow"))
    one = subscribe(subscriptions, "/a", "1", "client")
    two = subscribe(subscriptions, "/a", "2", "client-individual")
    headers = [subscriptions.deliver(sub, "same") for sub in (one, two, one, two)]
    assert headers == ["0", "1", "2", "3"]
    assert list(one.pending) == ["0", "2"]


def test_1_1_key_is_subscription_and_message_id() -> None:
    subscriptions = Subscriptions("1.1", SubscriptionPolicy(duplicates="allow"))
    one = subscribe(subscriptions, "/a", "1", "client-individual")
    two = subscribe(subscriptions, "/a", "2", "client-individual")
    assert subscriptions.deliver(one, "m") is None
    assert subscriptions.deliver(two, "m") is None
    assert list(one.pending) == ["1\nm"]
    ack(subscriptions, ack_frame("1.1", "2", "m"))
    assert (list(one.pending), two.pending) == (["1\nm"], {})
    ack(subscriptions, ack_frame("1.1", "1", "m"))
    assert subscriptions.pending_acks == 0


def test_1_0_subscriptions_share_a_key_and_the_ack_settles_the_latest() -> None:
    subscriptions = Subscriptions("1.0", SubscriptionPolicy(duplicates="allow"))
    one = subscribe(subscriptions, "/a", "1", "client")
    two = subscribe(subscriptions, "/a", "2", "client")
    subscriptions.deliver(one, "m")
    subscriptions.deliver(two, "m")
    assert subscriptions.pending_acks == 1  # one key
    ack(subscriptions, ack_frame("1.0", "", "m"))
    assert two.pending == {}
    assert list(one.pending) == ["m"]  # the index named only the latest
    with pytest.raises(InvalidFrame):
        subscriptions.check_ack(ack_frame("1.0", "", "m"))
    # Settling or removing the older subscription leaves the latest's entry alone.
    for sub, message_id in ((one, "n"), (one, "p"), (two, "n")):
        subscriptions.deliver(sub, message_id)
    ack(subscriptions, ack_frame("1.0", "", "p"))  # cumulative: one's "m" and "n" go too
    assert one.pending == {}
    ack(subscriptions, ack_frame("1.0", "", "n"))
    assert two.pending == {}
    subscriptions.deliver(one, "q")
    subscriptions.deliver(two, "q")
    assert subscriptions.remove("1") is one
    ack(subscriptions, ack_frame("1.0", "", "q"))
    assert subscriptions.pending_acks == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_pending_ack_cap(version: str) -> None:
    subscriptions = Subscriptions(version, SubscriptionPolicy(max_pending_acks=2))
    subscription = subscribe(subscriptions, "/a", "s", "client-individual")
    keys = deliver_keys(subscriptions, subscription, 2)
    with pytest.raises(LimitExceeded) as info:
        subscriptions.deliver(subscription, "m-2")
    assert info.value.message == "too many unacknowledged messages"
    assert info.value.details == "at most 2 may be pending"
    assert list(subscription.pending) == [k if version != "1.1" else f"s\n{k}" for k in keys]
    ack(subscriptions, ack_frame(version, "s", keys[0]))
    subscriptions.deliver(subscription, "m-3")  # room again


# --- ACK and NACK ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [C.ACK, C.NACK])
@pytest.mark.parametrize("version", VERSIONS)
def test_client_mode_is_cumulative(version: str, command: Command) -> None:
    subscriptions = Subscriptions(version)
    subscription = subscribe(subscriptions, "/a", "s", "client")
    keys = deliver_keys(subscriptions, subscription, 4)
    ack(subscriptions, ack_frame(version, "s", keys[2], command))
    assert len(subscription.pending) == 1
    for key in keys[:3]:
        with pytest.raises(InvalidFrame, match="unknown ack id"):
            subscriptions.check_ack(ack_frame(version, "s", key))
    ack(subscriptions, ack_frame(version, "s", keys[3], command))
    assert subscriptions.pending_acks == 0


@pytest.mark.parametrize("command", [C.ACK, C.NACK])
def test_client_individual_mode_settles_one(command: Command) -> None:
    subscriptions = Subscriptions("1.2")
    subscription = subscribe(subscriptions, "/a", "s", "client-individual")
    keys = deliver_keys(subscriptions, subscription, 3)
    ack(subscriptions, ack_frame("1.2", "s", keys[1], command))
    assert list(subscription.pending) == [keys[0], keys[2]]


def test_cumulative_ack_leaves_other_subscriptions_alone() -> None:
    subscriptions = Subscriptions("1.2", SubscriptionPolicy(duplicates="allow"))
    one = subscribe(subscriptions, "/a", "1", "client")
    two = subscribe(subscriptions, "/a", "2", "client")
    ack_ids = [subscriptions.deliver(sub, "m") for sub in (one, two, one, two)]
    ack(subscriptions, ack_frame("1.2", "1", str(ack_ids[2])))
    assert (one.pending, len(two.pending)) == ({}, 2)


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_ack_id(version: str) -> None:
    subscriptions = Subscriptions(version)
    subscribe(subscriptions, "/a", "s", "client")
    with pytest.raises(InvalidFrame) as info:
        subscriptions.check_ack(ack_frame(version, "s", "nope"))
    key = {"1.0": "nope", "1.1": "s\nnope", "1.2": "nope"}[version]
    assert info.value.message == "unknown ack id"
    assert info.value.details == f"no unacknowledged message {key!r}"


def test_ack_of_a_message_settled_meanwhile_is_a_no_op() -> None:
    """Two ACKs a COMMIT releases are both checked before either is applied."""
    subscriptions = Subscriptions("1.2")
    subscription = subscribe(subscriptions, "/a", "s", "client")
    keys = deliver_keys(subscriptions, subscription, 3)
    later = subscriptions.check_ack(ack_frame("1.2", "s", keys[1]))
    earlier = subscriptions.check_ack(ack_frame("1.2", "s", keys[0]))
    same = subscriptions.check_ack(ack_frame("1.2", "s", keys[1]))
    for pending in (later, earlier, same):
        subscriptions.acknowledge(pending)
    assert list(subscription.pending) == [keys[2]]
    assert later == same == PendingAck(subscription, keys[1])


# --- against a reference model --------------------------------------------------------------

IDS = st.sampled_from(["a", "b", "c"])
DESTINATIONS = st.sampled_from(["/x", "/y"])
MESSAGE_IDS = st.sampled_from(["m1", "m2"])
MODES = st.sampled_from(["auto", "client", "client-individual"])
MAX_SUBSCRIPTIONS = 2
MAX_PENDING = 4


@dataclasses.dataclass(eq=False)
class ModelSubscription:
    """A live subscription as the model sees it: pending keys in a list, oldest first."""

    id: str
    destination: str
    mode: str
    pending: list[str] = dataclasses.field(default_factory=list)


class SubscriptionsMachine(RuleBasedStateMachine):
    """
    The model: live subscriptions in order, each with its list of pending
    keys, and for each key the subscription that received it last. An ACK
    is valid when that subscription still awaits it.
    """

    @initialize(version=st.sampled_from(VERSIONS), duplicates=st.sampled_from(DUPLICATE_POLICIES))
    def start(self, version: str, duplicates: str) -> None:
        self.version = version
        self.duplicates = duplicates
        policy = SubscriptionPolicy(duplicates, MAX_SUBSCRIPTIONS, MAX_PENDING)  # type: ignore[arg-type]
        self.subscriptions = Subscriptions(version, policy)
        self.real: dict[int, Record] = {}  # id(model) -> the object under test
        self.live: list[ModelSubscription] = []
        self.last_delivered: dict[str, ModelSubscription] = {}
        self.ack_ids = 0

    def find(self, subscription_id: str) -> ModelSubscription | None:
        return next((m for m in self.live if m.id == subscription_id), None)

    def awaited(self, key: str) -> ModelSubscription | None:
        owner = self.last_delivered.get(key)
        return owner if owner is not None and owner in self.live and key in owner.pending else None

    def pending_count(self) -> int:
        return sum(self.awaited(key) is not None for key in self.last_delivered)

    def drop(self, model: ModelSubscription) -> None:
        self.live.remove(model)
        model.pending.clear()
        self.subscriptions.remove(model.id)

    @rule(subscription_id=IDS, destination=DESTINATIONS, mode=MODES)
    def subscribe(self, subscription_id: str, destination: str, mode: str) -> None:
        frame = subscribe_frame(destination, subscription_id, mode)
        same = [m for m in self.live if m.destination == destination]
        replacing = bool(same) and self.duplicates == "replace"
        if self.find(subscription_id) is not None:
            expected: type[Exception] | None = InvalidFrame
        elif same and self.duplicates == "reject":
            expected = InvalidFrame
        elif len(self.live) >= MAX_SUBSCRIPTIONS and not replacing:
            expected = Refused
        else:
            expected = None
        if expected is not None:
            with pytest.raises(expected):
                self.subscriptions.admit(frame)
            return
        admission = self.subscriptions.admit(frame)
        assert [s.id for s in admission.replaces] == ([m.id for m in same] if replacing else [])
        for old in same if replacing else []:
            self.drop(old)
        model = ModelSubscription(subscription_id, destination, mode)
        real = Record.admitted(admission)
        self.subscriptions.add(real)
        self.live.append(model)
        self.real[id(model)] = real

    @rule(subscription_id=IDS)
    def unsubscribe(self, subscription_id: str) -> None:
        model = self.find(subscription_id)
        removed = self.subscriptions.remove(subscription_id)
        if model is None:
            assert removed is None
        else:
            assert removed is self.real[id(model)]
            self.live.remove(model)
            model.pending.clear()

    @rule(data=st.data(), message_id=MESSAGE_IDS)
    def deliver(self, data: st.DataObject, message_id: str) -> None:
        if self.live:
            self.deliver_to(data.draw(st.sampled_from(self.live)), message_id)

    @rule(destination=DESTINATIONS, message_id=MESSAGE_IDS)
    def fan_out(self, destination: str, message_id: str) -> None:
        """One message to every subscription to ``destination``, until the cap stops it."""
        for model in [m for m in self.live if m.destination == destination]:
            if not self.deliver_to(model, message_id):
                return

    def deliver_to(self, model: ModelSubscription, message_id: str) -> bool:
        """Deliver and check the ack header; False when over the cap."""
        real = self.real[id(model)]
        if model.mode == "auto":
            assert self.subscriptions.deliver(real, message_id) is None
            return True
        if self.pending_count() >= MAX_PENDING:
            with pytest.raises(LimitExceeded):
                self.subscriptions.deliver(real, message_id)
            return False
        header = self.subscriptions.deliver(real, message_id)
        if self.version == "1.2":
            assert header == str(self.ack_ids)
            self.ack_ids += 1
            key = header
        else:
            assert header is None
            key = f"{model.id}\n{message_id}" if self.version == "1.1" else message_id
        if key not in model.pending:
            model.pending.append(key)
        self.last_delivered[key] = model
        return True

    def ack_frames(self, data: st.DataObject, count: int) -> list[tuple[Frame, str]]:
        """Draw ACKs and NACKs for keys delivered (or not): each with its model key."""
        frames = []
        for _ in range(count):
            command = data.draw(st.sampled_from([C.ACK, C.NACK]))
            subscription_id = data.draw(IDS)
            name = data.draw(st.sampled_from([*self.client_names(), "m1", "99"]))
            key = f"{subscription_id}\n{name}" if self.version == "1.1" else name
            frames.append((ack_frame(self.version, subscription_id, name, command), key))
        return frames

    def client_names(self) -> list[str]:
        """What clients name delivered messages by: the ack id, or the message-id."""
        return sorted({key.rpartition("\n")[2] for key in self.last_delivered})

    @rule(data=st.data(), count=st.integers(1, 3))
    def commit_acks(self, data: st.DataObject, count: int) -> None:
        """ACKs a COMMIT releases (one, outside a transaction): all checked, then applied."""
        frames = self.ack_frames(data, count)
        owners = [self.awaited(key) for _, key in frames]
        if None in owners:
            unknown = frames[owners.index(None)][0]
            with pytest.raises(InvalidFrame, match="unknown ack id"):
                self.subscriptions.check_ack(unknown)
            return
        pendings = [self.subscriptions.check_ack(frame) for frame, _ in frames]
        for pending, (_, key), owner in zip(pendings, frames, owners, strict=True):
            assert owner is not None
            assert pending.subscription is self.real[id(owner)]
            self.subscriptions.acknowledge(pending)
            if key not in owner.pending:
                continue  # settled by an earlier one
            cut = owner.pending.index(key) + 1 if owner.mode == "client" else None
            settled = owner.pending[:cut] if cut is not None else [key]
            owner.pending = [k for k in owner.pending if k not in settled]

    @invariant()
    def matches_the_model(self) -> None:
        if not hasattr(self, "subscriptions"):
            return
        assert [s.id for s in self.subscriptions] == [m.id for m in self.live]
        for model in self.live:
            real = self.real[id(model)]
            assert (real.destination, real.ack_mode) == (model.destination, model.mode)
            assert list(real.pending) == model.pending
        assert self.subscriptions.pending_acks == self.pending_count()
        assert self.pending_count() <= MAX_PENDING
        assert len(self.live) <= MAX_SUBSCRIPTIONS


SubscriptionsMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=30, deadline=None, database=None
)
TestSubscriptions = SubscriptionsMachine.TestCase
