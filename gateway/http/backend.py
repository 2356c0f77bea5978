"""
The HTTP resources other services use (see docs/mongodb.md, Backend integration):
posting into a room, presence, and the data behind unread badges.

- ``POST /v1/api/chat/{roomId}/messages``: a chat message, as a SEND would
  carry it, published like one; needs ``Authorization: Bearer <service token>``.
- ``GET /v1/api/chat/{roomId}/presence``: the members subscribed to the room.
- ``GET /v1/api/chat/last/connect?memberId=``: the member's last connect or
  disconnect (``memberId`` defaults to the caller's).
- ``GET /v1/api/chat/last/message?rooms=1,2,3``: each room's newest message;
  without ``rooms``, of the caller's rooms (:meth:`BackendApi.member_rooms`).

With authentication on, the GETs read what the caller may (:mod:`gateway.security.access`).
"""

from __future__ import annotations

import http
import re
import zoneinfo
from collections.abc import Mapping

from websockets.http11 import Response

from gateway.chat.ids import local_date_time, long_id
from gateway.chat.service import ChatService
from gateway.security.access import Access, Caller
from gateway.transport.handlers import Refusal
from kafka_bridge import PublishError
from persistence import ConnectionLog, MessageStore, PresenceStore

from .params import room_id, single
from .responses import Refused, error_response, json_response

__all__ = ["MAX_ROOMS", "BackendApi", "BodyError"]

_PRESENCE = re.compile(r"/v1/api/chat/([^/]+)/presence")
_LAST_CONNECT = "/v1/api/chat/last/connect"
_LAST_MESSAGE = "/v1/api/chat/last/message"
MAX_ROOMS = 1000  # rooms one last/message request may name

# Why a request body could not be read: the status and the reason.
BodyError = tuple[http.HTTPStatus, str]


class BackendApi:
    """
    Answers the backend resources.

    Args:
        chat: Composes and publishes posted messages.
        store: The chat history (last messages).
        presence: Who is in which room.
        connections: Each member's last connect or disconnect, and rooms.
        access: Who calls, and what they may read; its service token is the
            one services post with (empty: posting is off).
        zone: Time zone of ``lastConnect``, like ``createAt``.

    """

    def __init__(
        self,
        chat: ChatService,
        store: MessageStore,
        presence: PresenceStore,
        connections: ConnectionLog,
        *,
        access: Access,
        zone: zoneinfo.ZoneInfo,
    ) -> None:
        self.chat = chat
        self.store = store
        self.presence = presence
        self.connections = connections
        self.access = access
        self.zone = zone

    async def get(
        self, path: str, query: Mapping[str, list[str]], caller: Caller
    ) -> Response | None:
        """
        Answer ``caller``'s GET of a backend resource; None if ``path`` is not one.

        Raises:
            Refused: The request is invalid, or asks for what ``caller`` may not read.

        """
        if path == _LAST_CONNECT:
            return await self._last_connect(self._member(query, caller, "memberId"))
        if path == _LAST_MESSAGE:
            return await self._last_messages(query, caller)
        if match := _PRESENCE.fullmatch(path):
            room = room_id(match[1])
            await self.access.check_room(caller, room)
            members = await self.presence.members(room)
            return json_response(http.HTTPStatus.OK, {"chatRoomId": room, "memberIds": members})
        return None

    async def member_rooms(self, member: Caller, member_id: int) -> list[int]:
        """
        The rooms last/message answers for by default: the token's rooms claim
        when it has one (the first :data:`MAX_ROOMS`), else the rooms the member
        has subscribed to through the gateway (the connection log).
        """
        if member is not None and member.rooms is not None:
            return sorted(member.rooms)[:MAX_ROOMS]
        return await self.connections.rooms(member_id)

    async def post_message(
        self, room: str, authorization: str | None, body: bytes, body_error: BodyError | None
    ) -> Response:
        """Publish a message posted by a service; answer once the bus has it."""
        try:
            self._check_service(authorization)
            if body_error is not None:
                raise Refused(*body_error)
            message = self.chat.compose(room_id(room), body)
            done = await self.chat.publish(message)
            if done is not None:
                await done
        except Refused as exc:
            return exc.response
        except Refusal as exc:
            return error_response(http.HTTPStatus.BAD_REQUEST, exc.reason)
        except PublishError as exc:
            return error_response(http.HTTPStatus.SERVICE_UNAVAILABLE, f"message not sent: {exc}")
        return json_response(http.HTTPStatus.CREATED, message.to_dict())

    def _check_service(self, authorization: str | None) -> None:
        if not self.access.service_token:
            raise Refused(
                http.HTTPStatus.FORBIDDEN,
                "posting over HTTP is off: the gateway has no --service-token",
            )
        if not self.access.is_service(authorization):
            raise Refused(
                http.HTTPStatus.UNAUTHORIZED,
                "missing or wrong service token: send Authorization: Bearer <service token>",
            )

    async def _last_connect(self, member_id: int) -> Response:
        event = await self.connections.last_connect(member_id)
        if event is None:
            return error_response(
                http.HTTPStatus.NOT_FOUND, f"no connection of member {member_id} recorded"
            )
        return json_response(
            http.HTTPStatus.OK,
            {
                "memberId": event.member_id,
                "sessionId": event.session_id,
                "lastConnect": local_date_time(event.at_ns, self.zone),
            },
        )

    def _member(self, query: Mapping[str, list[str]], caller: Caller, needed: str) -> int:
        """
        The member ``memberId`` names, by default the caller; a member reads its
        own only. ``needed``: what to ask for when the caller is no member.
        """
        if "memberId" in query:
            member_id = _member_id(query)
            self.access.check_member(caller, member_id)
            return member_id
        if caller is None:
            raise Refused(
                http.HTTPStatus.BAD_REQUEST,
                f"{needed} is required: the request carries no member's token",
            )
        return caller.id

    async def _last_messages(self, query: Mapping[str, list[str]], caller: Caller) -> Response:
        if "rooms" in query:
            room_ids = _rooms(query)
        else:
            member_id = self._member(query, caller, "rooms (or memberId)")
            room_ids = await self.member_rooms(caller, member_id)
        messages = await self.store.last_messages(await self.access.usable_rooms(caller, room_ids))
        return json_response(
            http.HTTPStatus.OK,
            [
                {"chatRoomId": m.chat_room_id, "memberId": m.member_id, "createAt": m.create_at}
                for m in messages
            ],
        )


def _required(query: Mapping[str, list[str]], name: str) -> str:
    value = single(query, name)
    if value is None:
        raise Refused(http.HTTPStatus.BAD_REQUEST, f"{name} is required")
    return value


def _member_id(query: Mapping[str, list[str]]) -> int:
    member_id = long_id(_required(query, "memberId"))
    if member_id is None:
        raise Refused(http.HTTPStatus.BAD_REQUEST, "memberId must be an integer from 0 to 2^63 - 1")
    return member_id


def _rooms(query: Mapping[str, list[str]]) -> list[int]:
    parts = [part for part in _required(query, "rooms").split(",") if part]
    if not 1 <= len(parts) <= MAX_ROOMS:
        raise Refused(
            http.HTTPStatus.BAD_REQUEST, f"rooms must list 1 to {MAX_ROOMS} room ids, e.g. 1,2,3"
        )
    return list(dict.fromkeys(map(room_id, parts)))
