"""
What a REST request's path and query name, each read under one rule; what
breaks a rule is refused with 400 and the reason (:class:`.responses.Refused`).
"""

from __future__ import annotations

import http
from collections.abc import Mapping

from gateway.chat.ids import InvalidId, parse_room_id

from .responses import Refused

__all__ = ["room_id", "single"]


def room_id(text: str) -> int:
    """The room id ``text`` names (:func:`gateway.chat.ids.parse_room_id`)."""
    try:
        return parse_room_id(text)
    except InvalidId as exc:
        raise Refused(http.HTTPStatus.BAD_REQUEST, str(exc)) from None


def single(query: Mapping[str, list[str]], name: str) -> str | None:
    """The query parameter ``name``, None when absent; given twice, it is refused."""
    values = query.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise Refused(http.HTTPStatus.BAD_REQUEST, f"{name} given more than once")
    return values[0]
