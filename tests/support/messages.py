"""Chat messages as the store and the recovery buffer hold them."""

from __future__ import annotations

from persistence import ChatMessage


def placed(offset: int, room: int = 1) -> ChatMessage:
    """A message of ``room`` placed on the log at ``offset`` of partition 0."""
    return ChatMessage(
        id=f"{offset:024x}",
        chat_room_id=room,
        member_id=1,
        nickname="n",
        message=f"m{offset}",
        create_at="2024-01-01T00:00:00",
        partition=0,
        offset=offset,
    )
