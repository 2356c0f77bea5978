"""
Who calls the chat REST resources, and what they may read (docs/security.md).

With authentication on, ``/v1/api/chat/...`` take the token a CONNECT takes,
as ``Authorization: Bearer <token>`` (RFC 6750 §2.1), checked by the same
:class:`~gateway.security.auth.Authenticator`, and a room's resources the same room
check as a SUBSCRIBE (:class:`~gateway.security.authorization.RoomAuthorizer`).
A member reads the rooms it may use and its own last connection; a service
presenting ``--service-token`` reads everything. With authentication off
everyone reads everything, as in the seed.
"""

from __future__ import annotations

import asyncio
import hmac
import http

from gateway.http.responses import Refused

from .auth import AuthenticationError, Authenticator, bearer_token
from .authorization import RoomAuthorizer
from .identity import Member

__all__ = ["Access", "Caller"]

# Who a request speaks for: a member (its token), or None for full access
# (authentication off, or a service with --service-token).
Caller = Member | None

# Room checks asked at once: one request never opens more connections to the
# --room-authorization-url backend than this.
_PARALLEL_CHECKS = 16
# RFC 6750 §3: a 401 names the scheme the client should authenticate with.
_CHALLENGE = (("WWW-Authenticate", 'Bearer realm="stomp-gateway"'),)


class Access:
    """
    Decides what a REST request may read.

    Args:
        authenticator: Checks member tokens; None: authentication is off.
        authorizer: Decides who may use a room; None: every member, every room.
        service_token: The token services present; empty: none.

    """

    def __init__(
        self,
        authenticator: Authenticator | None,
        authorizer: RoomAuthorizer | None,
        service_token: str,
    ) -> None:
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.service_token = service_token

    def is_service(self, authorization: str | None) -> bool:
        """Whether ``authorization`` is ``Bearer <--service-token>``."""
        return self._is_service_token(bearer_token(authorization or ""))

    def _is_service_token(self, token: str | None) -> bool:
        """Whether ``token``, a Bearer credential's, is ``--service-token``."""
        return (
            bool(self.service_token)
            and token is not None
            and hmac.compare_digest(token.encode(), self.service_token.encode())
        )

    def caller(self, authorization: str | None) -> Caller:
        """
        Return who sends ``authorization`` (an ``Authorization`` header value).

        Raises:
            Refused: 401, authentication is on and it proves nobody.

        """
        if self.authenticator is None:
            return None
        value = (authorization or "").strip()
        token = bearer_token(value)  # read once: the service's token, or a member's
        if self._is_service_token(token):
            return None
        try:
            return self.authenticator.verify(value if token is None else token)
        except AuthenticationError as exc:
            raise Refused(http.HTTPStatus.UNAUTHORIZED, str(exc), _CHALLENGE) from None

    async def check_room(self, caller: Caller, room_id: int) -> None:
        """
        Raises:
            Refused: 403, ``caller`` may not use ``room_id``.

        """
        if not await self._may_use(caller, room_id):
            raise Refused(http.HTTPStatus.FORBIDDEN, f"not a member of room {room_id}")

    async def usable_rooms(self, caller: Caller, room_ids: list[int]) -> list[int]:
        """Return the rooms of ``room_ids`` that ``caller`` may use, in order."""
        allowed: list[bool] = []
        for start in range(0, len(room_ids), _PARALLEL_CHECKS):
            batch = room_ids[start : start + _PARALLEL_CHECKS]
            allowed += await asyncio.gather(*(self._may_use(caller, room) for room in batch))
        return [room for room, ok in zip(room_ids, allowed, strict=True) if ok]

    def check_member(self, caller: Caller, member_id: int) -> None:
        """
        Raises:
            Refused: 403, ``caller`` is another member than ``member_id``.

        """
        if caller is not None and caller.id != member_id:
            raise Refused(
                http.HTTPStatus.FORBIDDEN,
                f"member {caller.id} may read its own data only, not member {member_id}'s",
            )

    async def _may_use(self, caller: Caller, room_id: int) -> bool:
        if caller is None or self.authorizer is None:
            return True
        return await self.authorizer.allowed(caller, room_id)
