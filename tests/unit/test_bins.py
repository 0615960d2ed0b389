"""The BIN table: lookups at range edges, the narrowest range winning, files refused whole."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearport.bins.domain import BinFileError, BinInfo, BinRange, BinTable, parse_csv
from clearport.bins.service import SAMPLE_FILE
from clearport.vault.cards import detect_brand

HEADER = "bin_from,bin_to,brand,funding,category,issuer_country\n"
US = BinInfo("visa", "credit", "consumer", "US")
GB = BinInfo("visa", "debit", "consumer", "GB")


def test_lookups_at_the_edges_of_nested_ranges() -> None:
    table = BinTable([BinRange("400000", "499999", US), BinRange("42424242", "42424299", GB)])
    assert table.lookup("39999999") is None
    assert table.lookup("40000000") == US
    assert table.lookup("42424241") == US
    assert table.lookup("42424242") == GB  # the narrower range, from its first BIN
    assert table.lookup("42424299") == GB  # to its last
    assert table.lookup("42424300") == US
    assert table.lookup("49999999") == US
    assert table.lookup("50000000") is None
    assert table.lookup("424242") == US  # a 6-digit BIN is the first of its 8-digit ones


@given(st.integers(0, 99_999_999))
def test_the_narrowest_covering_range_wins(key: int) -> None:
    ranges = [
        BinRange("400000", "499999", US),
        BinRange("42000000", "42999999", GB),
        BinRange("42424242", "42424242", BinInfo("visa", "prepaid", "commercial", "DE")),
    ]
    table = BinTable(ranges)
    covering = [r for r in ranges if r.low <= key <= r.high]
    expected = min(covering, key=lambda r: r.high - r.low).info if covering else None
    assert table.lookup(str(key).zfill(8)) == expected


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("4000,4999,visa,credit,consumer,US", "line 2: 'bin_from'"),
        ("400000,49999,visa,credit,consumer,US", "line 2: 'bin_to'"),
        ("499999,400000,visa,credit,consumer,US", "is below"),
        ("400000,499999,visa,charge,consumer,US", "'funding'"),
        ("400000,499999,visa,credit,consumer,us", "'issuer_country'"),
        ("400000,499999,visa,credit,consumer", "columns"),
    ],
)
def test_a_bad_line_is_named(line: str, needle: str) -> None:
    with pytest.raises(BinFileError) as refused:
        parse_csv(HEADER + line + "\n")
    assert needle in refused.value.message


def test_overlaps_that_do_not_nest_and_duplicates_are_refused() -> None:
    with pytest.raises(BinFileError, match="without nesting"):
        parse_csv(
            HEADER + "400000,449999,visa,credit,consumer,US\n"
            "420000,459999,visa,credit,consumer,US\n"
        )
    with pytest.raises(BinFileError, match="twice"):
        parse_csv(HEADER + "400000,449999,visa,credit,consumer,US\n" * 2)
    with pytest.raises(BinFileError, match="header"):
        parse_csv("from,to\n")


def test_the_shipped_sample_covers_the_test_cards() -> None:
    table = BinTable(parse_csv(SAMPLE_FILE.read_text()))
    for number, funding, country in [
        ("4242424242424242", "credit", "US"),
        ("4000056655665556", "debit", "US"),
        ("4000000000000002", "credit", "US"),
        ("4000008260000000", "debit", "GB"),
        ("5555555555554444", "credit", "US"),
        ("5200828282828210", "debit", "US"),
        ("5105105105105100", "prepaid", "US"),
        ("378282246310005", "credit", "US"),
        ("6011111111111117", "credit", "US"),
        ("3566002020360505", "credit", "JP"),
        ("6200000000000005", "debit", "CN"),
    ]:
        info = table.lookup(number)
        assert info is not None, number
        assert (info.funding, info.issuer_country) == (funding, country), number
        assert info.brand == detect_brand(number), number
