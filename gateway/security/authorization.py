"""
Room authorization: may this member SUBSCRIBE to and SEND to this room?

Two ways to know, chosen by ``--room-authorization``: the rooms the member's
token lists (:class:`ClaimAuthorizer`), or the main backend asked over HTTP
(:class:`HttpAuthorizer`: ``GET {url}?memberId=&roomId=`` → 200 allows, 403
denies; anything else, or no answer in time, denies: it fails closed).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import urllib.parse
from typing import Protocol

from .identity import Member

__all__ = ["ClaimAuthorizer", "HttpAuthorizer", "RoomAuthorizer"]

logger = logging.getLogger(__name__)


class RoomAuthorizer(Protocol):
    """Decides who may use a room."""

    async def allowed(self, member: Member, room_id: int) -> bool:
        """Return whether ``member`` may subscribe and send to ``room_id``."""
        ...


class ClaimAuthorizer:
    """Allows the rooms the member's token lists, and nothing when it lists none."""

    async def allowed(self, member: Member, room_id: int) -> bool:
        return member.rooms is not None and room_id in member.rooms


class HttpAuthorizer:
    """
    Asks the main backend, and remembers its answers for a while.

    Args:
        url: The URL asked, with ``memberId`` and ``roomId`` added to its query.
        cache_seconds: How long an answer (200 or 403) is reused.
        timeout: Seconds the backend has to answer.

    """

    def __init__(self, url: str, *, cache_seconds: float, timeout: float) -> None:
        self.url = urllib.parse.urlsplit(url)
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self._answers: dict[tuple[int, int], tuple[bool, float]] = {}

    async def allowed(self, member: Member, room_id: int) -> bool:
        key = (member.id, room_id)
        now = time.monotonic()
        cached = self._answers.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            status = await asyncio.wait_for(self._ask(member.id, room_id), self.timeout)
        except (
            OSError,
            TimeoutError,
            ValueError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ) as exc:
            logger.warning("room authorization unavailable, denying: %r", exc)
            return False
        if status not in (200, 403):
            logger.warning("room authorization answered %d, denying", status)
            return False
        if self.cache_seconds > 0:
            self._forget_expired(now)
            self._answers[key] = (status == 200, now + self.cache_seconds)
        return status == 200

    def _forget_expired(self, now: float) -> None:
        if len(self._answers) > 10_000:
            self._answers = {k: v for k, v in self._answers.items() if v[1] > now}

    async def _ask(self, member_id: int, room_id: int) -> int:
        """GET the URL (HTTP/1.1, RFC 9112) and return the response's status code."""
        url = self.url
        https = url.scheme == "https"
        port = url.port or (443 if https else 80)
        query = urllib.parse.urlencode({"memberId": member_id, "roomId": room_id})
        target = f"{url.path or '/'}?{url.query + '&' if url.query else ''}{query}"
        reader, writer = await asyncio.open_connection(
            url.hostname, port, ssl=ssl.create_default_context() if https else None
        )
        try:
            writer.write(
                f"GET {target} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                "Accept: */*\r\nConnection: close\r\n\r\n".encode()
            )
            line = await reader.readuntil(b"\r\n")
        finally:
            writer.close()
        # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
        version, _, rest = line.decode("latin-1").partition(" ")
        if not version.startswith("HTTP/"):
            raise ValueError(f"not an HTTP response: {line[:40]!r}")
        return int(rest[:3])
