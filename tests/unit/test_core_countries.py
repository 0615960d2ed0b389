"""ISO 3166-1 alpha-2: only officially assigned codes are countries."""

from __future__ import annotations

import pytest

from clearport.core.countries import ASSIGNED_COUNTRIES, parse_country
from clearport.core.errors import InvalidRequest


def test_the_list_is_the_officially_assigned_codes() -> None:
    assert len(ASSIGNED_COUNTRIES) == 249
    assert all(len(c) == 2 and c.isascii() and c.isupper() for c in ASSIGNED_COUNTRIES)
    # Recent assignments are in (South Sudan 2011; Bonaire, Curaçao, Sint Maarten 2010).
    assert {"SS", "BQ", "CW", "SX", "US", "DE", "GB", "JP"} <= ASSIGNED_COUNTRIES


@pytest.mark.parametrize(
    "code",
    [
        "ZZ",  # user-assigned
        "XK",  # Kosovo: user-assigned, not in ISO 3166-1
        "EU",  # exceptionally reserved
        "UK",  # exceptionally reserved (the code is GB)
        "AN",  # withdrawn 2010
        "AA",
        "us",
        "Us",
        "USA",
        "U",
        "",
        "U\x00",
    ],
)
def test_anything_else_is_refused_naming_the_field(code: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_country(code, field=("bank_account", "country"))
    assert refused.value.field == ("bank_account", "country")
    assert "bank_account.country" in refused.value.message


def test_an_assigned_code_is_returned() -> None:
    assert parse_country("SS") == "SS"
