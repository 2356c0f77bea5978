"""Client-controlled decimal numbers, converted within bounds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.numbers import saturating_int

_digits = st.text(st.sampled_from("0123456789"), min_size=1, max_size=60)


@given(_digits, st.integers(0, 2**70))
def test_saturating_int_is_int_capped_at_the_ceiling(digits: str, ceiling: int) -> None:
    assert saturating_int(digits, ceiling) == min(int(digits), ceiling)


@given(st.integers(4_301, 100_000), st.integers(0, 5_000), st.integers(0, 2**64))
def test_past_int_digit_limit_is_the_ceiling(nines: int, zeros: int, ceiling: int) -> None:
    assert saturating_int("0" * zeros + "9" * nines, ceiling) == ceiling


@given(st.integers(0, 5_000), st.integers(0, 10**6))
def test_leading_zeros_do_not_count(zeros: int, value: int) -> None:
    assert saturating_int("0" * zeros + str(value), 10**6) == value
