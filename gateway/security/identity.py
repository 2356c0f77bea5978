"""Who a session speaks for: the member behind a connection, once known."""

from __future__ import annotations

import dataclasses

__all__ = ["Member"]


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    """
    The member a session was identified as on CONNECT.

    Attributes:
        id: The member id chat messages carry as ``memberId``.
        nickname: The nickname to stamp on messages, when the identity names one.
        rooms: The rooms the identity lists as the member's, or None when it
            lists none (room authorization then asks elsewhere, or allows).

    """

    id: int
    nickname: str | None = None
    rooms: frozenset[int] | None = None
