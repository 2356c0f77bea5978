"""What the connections of one gateway share, handed to each explicitly."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

from gateway.metrics import Metrics
from protocol import HeartBeatPolicy, Limits, SubscriptionPolicy

from .flusher import Flusher
from .handlers import Handlers, Session, SubscriptionIndex
from .heartbeats import HeartBeatWheel
from .outbound import OutboundSettings

__all__ = ["ConnectionSettings", "SendBudget", "Shared"]


class SendBudget(Protocol):
    """A session's SEND rate limit (a token bucket)."""

    def take(self, now: float, count: int = 1) -> bool:
        """Spend ``count`` tokens if there are; say whether there were."""

    def borrow(self, now: float) -> float:
        """Spend a token, in debt if need be; return how long to wait it off."""


class ConnectionSettings(OutboundSettings, Protocol):
    """The settings a connection reads (:class:`gateway.config.Config` has them all)."""

    @property
    def connect_timeout(self) -> float: ...

    @property
    def shutdown_timeout(self) -> float: ...

    @property
    def send_rate(self) -> float: ...

    @property
    def send_burst(self) -> int: ...

    @property
    def send_rate_policy(self) -> str: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Shared:
    """
    What the connections of one gateway share; the composition root makes it.

    Attributes:
        settings: Limits and timeouts.
        limits: Bounds on what a client may send.
        heart_beat_policy: How heart-beats are negotiated.
        subscription_policy: The rules for each session's subscriptions and acks.
        metrics: What ``/metrics`` shows.
        heart_beats: The timer of every session's heart-beats.
        flusher: Writes queued output once per turn of the loop.
        subscriptions: Every session's live subscriptions.
        handlers: Makes the application's handlers of a connection.
        send_budget: Makes a session's SEND rate limit, given the time.
        redacted: Headers whose values are never logged (credentials).

    """

    settings: ConnectionSettings
    limits: Limits
    heart_beat_policy: HeartBeatPolicy
    subscription_policy: SubscriptionPolicy
    metrics: Metrics
    heart_beats: HeartBeatWheel
    flusher: Flusher
    subscriptions: SubscriptionIndex
    handlers: Callable[[Session], Handlers]
    send_budget: Callable[[float], SendBudget]
    redacted: frozenset[str]
