"""Settlement's one rounding rule in integers (`divide_half_even`) against Python's exact
half-even rounding of a Fraction, which it replaced on the per-settlement path (decision 0915):
the same integer for every numerator and divisor, negative, exact halves and large values."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from clearport.core.errors import InvariantViolation
from clearport.settlement.fees import BPS, FeeTotals, divide_half_even, round_half_even
from clearport.settlement.netting import reserve_hold_minor
from clearport.settlement.store.items import exact_minor

# Past a bigint and past a float's 53 bits: the rule must not lean on either.
LARGE = 10**30


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (0, 1, 0),
        (5, 1, 5),
        (-5, 1, -5),
        (1, 2, 0),  # exact halves go to the even neighbour, on both sides of zero
        (3, 2, 2),
        (5, 2, 2),
        (7, 2, 4),
        (-1, 2, 0),
        (-3, 2, -2),
        (-5, 2, -2),
        (-7, 2, -4),
        (15_000, 10_000, 2),  # 1.5 -> 2
        (25_000, 10_000, 2),  # 2.5 -> 2
        (-25_000, 10_000, -2),
        (-35_000, 10_000, -4),
        (24_999, 10_000, 2),
        (25_001, 10_000, 3),
        (-25_001, 10_000, -3),
        (-24_999, 10_000, -2),
        (1, 3, 0),
        (2, 3, 1),
        (-2, 3, -1),
        (2 * LARGE + 1, 2, LARGE),  # LARGE is even
        (2 * LARGE + 3, 2, LARGE + 2),
        (-(2 * LARGE + 1), 2, -LARGE),
    ],
)
def test_half_even_division_on_edge_cases(numerator: int, denominator: int, expected: int) -> None:
    assert divide_half_even(numerator, denominator) == expected
    assert round(Fraction(numerator, denominator)) == expected


@settings(max_examples=2_000)
@given(st.integers(-LARGE, LARGE), st.integers(1, 10**15))
@example(-(10**15) // 2, 10**15)  # a negative exact half, not reduced
@example(3 * 10**14, 2 * 10**14)  # 1.5, not reduced
def test_half_even_division_equals_rounding_the_fraction(numerator: int, denominator: int) -> None:
    assert divide_half_even(numerator, denominator) == round(Fraction(numerator, denominator))


@given(st.integers(-LARGE, LARGE), st.integers(1, 10**6))
def test_exact_halves_round_to_even(quotient: int, half_of: int) -> None:
    """q + 1/2, whatever the divisor it is written over: to q when q is even, else to q + 1."""
    denominator = 2 * half_of
    got = divide_half_even(quotient * denominator + half_of, denominator)
    assert got == (quotient if quotient % 2 == 0 else quotient + 1)


@given(st.fractions())
def test_round_half_even_of_a_fraction_is_pythons(value: Fraction) -> None:
    assert round_half_even(value) == round(value)


@given(st.integers(0, 10**13), st.integers(0, BPS))
def test_reserve_hold_equals_the_fraction_rule(gross_minor: int, percent_bps: int) -> None:
    assert reserve_hold_minor(gross_minor, percent_bps) == round(
        Fraction(gross_minor * percent_bps, BPS)
    )


def test_a_divisor_must_be_positive() -> None:
    for denominator in (0, -2):
        with pytest.raises(InvariantViolation):
            divide_half_even(1, denominator)


exact_sums = st.fractions(min_value=-(10**12), max_value=10**12, max_denominator=10**8)


@given(exact_sums, exact_sums, exact_sums, st.integers(0, 10**12), st.integers(0, 10**12))
def test_the_split_is_the_totals_rounded_once(
    ic: Fraction, sf: Fraction, mk: Fraction, ic_charged: int, mk_charged: int
) -> None:
    """`FeeTotals.split` (what netting reads) gives what the totals' own properties give."""
    totals = FeeTotals(ic, sf, mk, ic_charged, 0, mk_charged)
    split = totals.split()
    assert (
        split.charged,
        split.interchange_payable,
        split.scheme_fee_payable,
        split.markup_revenue,
        split.rounding_residual,
    ) == (
        totals.charged,
        round(ic),
        round(sf),
        round(mk),
        totals.charged - round(ic) - round(sf) - round(mk),
    )


@given(st.decimals(allow_nan=False, allow_infinity=False, places=8))
@example(Decimal("-0.50000000"))
@example(Decimal("0"))
@example(Decimal("123456789012345678901234567890.12345678"))
def test_exact_fee_sums_read_from_numeric_text_are_the_decimals(value: Decimal) -> None:
    """The store reads the exact sums as PostgreSQL's numeric text (plain digits, a point)."""
    text = f"{value:f}"
    assert exact_minor(text) == Fraction(Decimal(text))
