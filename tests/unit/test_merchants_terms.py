"""Merchant fields every caller meets in the service (not only the API's schema)."""

from __future__ import annotations

import pytest

from clearport.core.errors import InvalidRequest
from clearport.merchants.domain import validate_name, validate_payout_delay


@pytest.mark.parametrize("days", [0, 2, 90])
def test_payout_delay_within_bounds(days: int) -> None:
    assert validate_payout_delay(days) == days


@pytest.mark.parametrize("days", [-1, 91, 10_000])
def test_payout_delay_out_of_bounds_names_the_field(days: int) -> None:
    with pytest.raises(InvalidRequest) as refused:
        validate_payout_delay(days)
    assert refused.value.field == ("payout_delay_days",)


def test_names_are_1_to_200_characters() -> None:
    assert validate_name("A") == "A"
    assert validate_name("x" * 200) == "x" * 200
    for bad in ("", "x" * 201):
        with pytest.raises(InvalidRequest):
            validate_name(bad)
