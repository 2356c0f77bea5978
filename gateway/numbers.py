"""Client-controlled decimal numbers, converted within bounds."""

from __future__ import annotations

__all__ = ["saturating_int"]


def saturating_int(digits: str, ceiling: int) -> int:
    """
    Return the value of the ASCII decimal ``digits``, or ``ceiling`` if it is larger.

    Converts no more digits than ``ceiling`` has: ``int()`` of a client's
    number raises ``ValueError`` beyond 4,300 digits, and takes quadratic time below.
    """
    significant = digits.lstrip("0")
    if len(significant) > len(str(ceiling)):
        return ceiling
    return min(int(significant or "0"), ceiling)
