"""
Destinations: which SEND goes where, and what may be subscribed to.

The seed's layout, with configurable prefixes: SEND ``/pub/chat/{roomId}``
and ``/pub/ping`` to the application; SUBSCRIBE ``/sub/chat/{roomId}``,
``/sub/pong`` and anything else under a broker prefix; ``/user/queue/errors``
receives this session's application errors.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from .ids import InvalidId, parse_room_id

__all__ = ["ERRORS_DESTINATION", "Router", "RoutingError", "SendTarget"]

ERRORS_DESTINATION = "/user/queue/errors"
USER_PREFIX = "/user/"


class RoutingError(ValueError):
    """A destination the client may not use; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class SendTarget:
    """Where a SEND goes: a chat room, the ping, or a broker destination."""

    kind: Literal["chat", "ping", "broker"]
    room_id: int = 0


class Router:
    """
    Classifies destinations.

    Args:
        app_prefix: Prefix of application destinations (``/pub``).
        broker_prefixes: Prefixes of broker destinations (``/sub``); the
            first one carries the chat rooms and the pong.
        allow_broker_send: Whether clients may SEND to broker destinations.

    """

    def __init__(
        self, app_prefix: str, broker_prefixes: tuple[str, ...], *, allow_broker_send: bool
    ) -> None:
        self.app_prefix = app_prefix
        self.broker_prefixes = broker_prefixes
        self.allow_broker_send = allow_broker_send
        self._room_prefix = f"{broker_prefixes[0]}/chat/"
        self.pong_destination = f"{broker_prefixes[0]}/pong"

    def room_of(self, destination: str) -> int | None:
        """Return the room a destination carries, or None if it is not a room."""
        if not destination.startswith(self._room_prefix):
            return None
        try:
            return parse_room_id(destination[len(self._room_prefix) :])
        except InvalidId:
            return None

    def room_destination(self, room_id: int) -> str:
        """Return the destination the room's messages are delivered to."""
        return f"{self._room_prefix}{room_id}"

    def route_send(self, destination: str) -> SendTarget:
        """
        Return where a client SEND to ``destination`` goes.

        Raises:
            RoutingError: Unknown or forbidden destination.

        """
        app = self.app_prefix + "/"
        if destination.startswith(app):
            name = destination[len(app) :]
            if name == "ping":
                return SendTarget("ping")
            if name.startswith("chat/"):
                return SendTarget("chat", _room_id(name[len("chat/") :]))
            raise RoutingError(f"unknown destination {destination!r}")
        if self._under_broker(destination):
            if not self.allow_broker_send:
                raise RoutingError(f"SEND to broker destination {destination!r} is not allowed")
            return SendTarget("broker")
        raise RoutingError(f"unknown destination {destination!r}")

    def check_subscribe(self, destination: str) -> None:
        """
        Refuse a destination that cannot be subscribed to.

        Raises:
            RoutingError: Not under a broker prefix, not a user destination,
                or a chat room whose id is not a positive integer.

        """
        if destination.startswith(self._room_prefix):
            _room_id(destination[len(self._room_prefix) :])
        elif not (self._under_broker(destination) or destination.startswith(USER_PREFIX)):
            raise RoutingError(f"cannot subscribe to {destination!r}")

    def _under_broker(self, destination: str) -> bool:
        return any(destination.startswith(prefix + "/") for prefix in self.broker_prefixes)


def _room_id(text: str) -> int:
    try:
        return parse_room_id(text)
    except InvalidId as exc:
        raise RoutingError(str(exc)) from None
