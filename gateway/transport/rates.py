"""A session's SEND rate limit with ``--send-rate-policy reject``: refuse, spending nothing."""

from __future__ import annotations

from protocol import Command, Frame

from .handlers import Refusal
from .shared import ConnectionSettings, SendBudget

__all__ = ["charge"]


def charge(
    budget: SendBudget, settings: ConnectionSettings, effects: list[Frame], now: float
) -> None:
    """
    Charge the SENDs among ``effects``, about to take effect together (a
    COMMIT's); refuse them all, spending nothing, when ``budget`` lacks tokens.

    Raises:
        Refusal: Over the rate.

    """
    sends = sum(effect.command is Command.SEND for effect in effects)
    if sends > settings.send_burst:
        raise Refusal(
            f"rate limit exceeded: the transaction holds {sends} SENDs, "
            f"more than --send-burst {settings.send_burst}"
        )
    if sends and not budget.take(now, sends):
        raise Refusal(f"rate limit exceeded: at most {settings.send_rate:g} SENDs per second")
