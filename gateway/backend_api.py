"""
The HTTP resources other services use (see README, Backend integration):
posting into a room, presence, and the data behind unread badges.

- ``POST /v1/api/chat/{roomId}/messages``: a chat message, as a SEND would
  carry it, published like one; needs ``Authorization: Bearer <service token>``.
- ``GET /v1/api/chat/{roomId}/presence``: the members subscribed to the room.
- ``GET /v1/api/chat/last/connect?memberId=``: the member's last connect or
  disconnect.
- ``GET /v1/api/chat/last/message?rooms=1,2,3``: each room's newest message.
"""

from __future__ import annotations

import hmac
import http
import re
import zoneinfo
from collections.abc import Mapping

from websockets.http11 import Response

from kafka_bridge import PublishError
from persistence import ConnectionLog, MessageStore, PresenceStore

from .chat import ApplicationError, ChatService, local_date_time
from .http_responses import error_response, json_response
from .routing import RoutingError, parse_room_id

__all__ = ["MAX_ROOMS", "BackendApi", "BodyError"]

_PRESENCE = re.compile(r"/v1/api/chat/([^/]+)/presence")
_LAST_CONNECT = "/v1/api/chat/last/connect"
_LAST_MESSAGE = "/v1/api/chat/last/message"
MAX_ROOMS = 1000  # rooms one last/message request may name

# Why a request body could not be read: the status and the reason.
BodyError = tuple[http.HTTPStatus, str]


class _Refused(Exception):
    def __init__(self, status: http.HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.response = error_response(status, reason)


class BackendApi:
    """
    Answers the backend resources.

    Args:
        chat: Composes and publishes posted messages.
        store: The chat history (last messages).
        presence: Who is in which room.
        connections: Each member's last connect or disconnect.
        service_token: The token services post with; empty: posting is off.
        zone: Time zone of ``lastConnect``, like ``createAt``.

    """

    def __init__(
        self,
        chat: ChatService,
        store: MessageStore,
        presence: PresenceStore,
        connections: ConnectionLog,
        *,
        service_token: str,
        zone: zoneinfo.ZoneInfo,
    ) -> None:
        self.chat = chat
        self.store = store
        self.presence = presence
        self.connections = connections
        self.service_token = service_token
        self.zone = zone

    async def get(self, path: str, query: Mapping[str, list[str]]) -> Response | None:
        """Answer a GET of a backend resource; None if ``path`` is not one."""
        try:
            if path == _LAST_CONNECT:
                return await self._last_connect(_member_id(query))
            if path == _LAST_MESSAGE:
                return await self._last_messages(_rooms(query))
            if match := _PRESENCE.fullmatch(path):
                room_id = _room(match[1])
                members = await self.presence.members(room_id)
                return json_response(
                    http.HTTPStatus.OK, {"chatRoomId": room_id, "memberIds": members}
                )
        except _Refused as exc:
            return exc.response
        return None

    async def post_message(
        self, room: str, authorization: str | None, body: bytes, body_error: BodyError | None
    ) -> Response:
        """Publish a message posted by a service; answer once the bus has it."""
        try:
            self._authorize(authorization)
            if body_error is not None:
                raise _Refused(*body_error)
            message = self.chat.compose(_room(room), body)
            done = await self.chat.publish(message)
            if done is not None:
                await done
        except _Refused as exc:
            return exc.response
        except ApplicationError as exc:
            return error_response(http.HTTPStatus.BAD_REQUEST, exc.reason)
        except PublishError as exc:
            return error_response(http.HTTPStatus.SERVICE_UNAVAILABLE, f"message not sent: {exc}")
        return json_response(http.HTTPStatus.CREATED, message.to_dict())

    def _authorize(self, authorization: str | None) -> None:
        if not self.service_token:
            raise _Refused(
                http.HTTPStatus.FORBIDDEN,
                "posting over HTTP is off: the gateway has no --service-token",
            )
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.service_token.encode()
        ):
            raise _Refused(
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

    async def _last_messages(self, room_ids: list[int]) -> Response:
        messages = await self.store.last_messages(room_ids)
        return json_response(
            http.HTTPStatus.OK,
            [
                {"chatRoomId": m.chat_room_id, "memberId": m.member_id, "createAt": m.create_at}
                for m in messages
            ],
        )


def _room(text: str) -> int:
    try:
        return parse_room_id(text)
    except RoutingError as exc:
        raise _Refused(http.HTTPStatus.BAD_REQUEST, str(exc)) from None


def _one(query: Mapping[str, list[str]], name: str) -> str:
    values = query.get(name, [])
    if len(values) != 1:
        raise _Refused(http.HTTPStatus.BAD_REQUEST, f"{name} is required, once")
    return values[0]


def _member_id(query: Mapping[str, list[str]]) -> int:
    text = _one(query, "memberId")
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise _Refused(http.HTTPStatus.BAD_REQUEST, "memberId must be a non-negative integer")
    return int(text)


def _rooms(query: Mapping[str, list[str]]) -> list[int]:
    parts = [part for part in _one(query, "rooms").split(",") if part]
    if not 1 <= len(parts) <= MAX_ROOMS:
        raise _Refused(
            http.HTTPStatus.BAD_REQUEST, f"rooms must list 1 to {MAX_ROOMS} room ids, e.g. 1,2,3"
        )
    return list(dict.fromkeys(map(_room, parts)))
