"""The BIN table as rules: ranges of card-number prefixes and what they say about a card.

A range is given as `bin_from`..`bin_to`, two digit strings of equal length (6 to 8), inclusive.
Ranges of different lengths are compared over 8 digits: `400000`..`499999` covers the 8-digit
BINs `40000000`..`49999999`. Ranges nest or are disjoint (a partial overlap is refused at
import); where they nest, the narrowest wins, so a table can say "Visa, credit, US" for `4` and
"Visa, debit, GB" for one issuer inside it (decision 0511).

`BinTable` flattens the ranges once into disjoint segments, so a lookup is one binary search.
"""

from __future__ import annotations

import bisect
import csv
import heapq
import io
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from clearport.core.errors import InvalidRequest

Funding = Literal["credit", "debit", "prepaid"]
FUNDINGS: tuple[Funding, ...] = get_args(Funding)
Category = Literal["consumer", "commercial"]
CATEGORIES: tuple[Category, ...] = get_args(Category)

KEY_DIGITS = 8
CSV_COLUMNS = ("bin_from", "bin_to", "brand", "funding", "category", "issuer_country")
MAX_RANGES = 2_000_000  # a full commercial BIN table is a few hundred thousand rows
_DIGITS = re.compile(r"^[0-9]{6,8}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_BRAND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True, slots=True)
class BinInfo:
    brand: str
    funding: str
    category: str
    issuer_country: str


@dataclass(frozen=True, slots=True)
class BinRange:
    bin_from: str
    bin_to: str
    info: BinInfo

    @property
    def low(self) -> int:
        return int(self.bin_from.ljust(KEY_DIGITS, "0"))

    @property
    def high(self) -> int:
        return int(self.bin_to.ljust(KEY_DIGITS, "9"))


def bin_key(digits: str) -> int:
    """The 8-digit lookup key of a card number or BIN (a shorter one padded with zeros)."""
    head = digits[:KEY_DIGITS]
    return int(head.ljust(KEY_DIGITS, "0"))


class BinFileError(InvalidRequest):
    pass


def _bad(line: int, column: str, why: str) -> BinFileError:
    return BinFileError(f"line {line}: '{column}' {why}", field=column, code="parameter_invalid")


def parse_csv(text: str) -> list[BinRange]:
    """The ranges of a BIN file (header `bin_from,bin_to,brand,funding,category,issuer_country`),
    or the first error naming its line and column. Nothing of a bad file is used."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != CSV_COLUMNS:
        raise BinFileError(
            f"the first line must be the header {','.join(CSV_COLUMNS)}", code="parameter_invalid"
        )
    ranges: list[BinRange] = []
    for line, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_COLUMNS):
            raise _bad(line, "row", f"has {len(row)} columns, expected {len(CSV_COLUMNS)}")
        if len(ranges) >= MAX_RANGES:
            raise _bad(line, "row", f"is past the limit of {MAX_RANGES} ranges")
        ranges.append(
            parse_row(line, dict(zip(CSV_COLUMNS, (c.strip() for c in row), strict=True)))
        )
    check_nesting(ranges)
    return ranges


def parse_row(line: int, row: dict[str, str]) -> BinRange:
    bin_from, bin_to = row["bin_from"], row["bin_to"]
    if not _DIGITS.match(bin_from):
        raise _bad(line, "bin_from", "must be 6 to 8 digits")
    if not _DIGITS.match(bin_to) or len(bin_to) != len(bin_from):
        raise _bad(line, "bin_to", "must be digits of the same length as bin_from")
    if bin_to < bin_from:
        raise _bad(line, "bin_to", "is below bin_from")
    if not _BRAND.match(row["brand"]):
        raise _bad(line, "brand", "must be a lower-case brand name")
    if row["funding"] not in FUNDINGS:
        raise _bad(line, "funding", f"must be one of {', '.join(FUNDINGS)}")
    if row["category"] not in CATEGORIES:
        raise _bad(line, "category", f"must be one of {', '.join(CATEGORIES)}")
    if not _COUNTRY.match(row["issuer_country"]):
        raise _bad(line, "issuer_country", "must be an ISO 3166 alpha-2 code (upper case)")
    info = BinInfo(row["brand"], row["funding"], row["category"], row["issuer_country"])
    return BinRange(bin_from, bin_to, info)


def check_nesting(ranges: Sequence[BinRange]) -> None:
    """Ranges nest or are disjoint; two equal ranges are a duplicate."""
    ordered = sorted(ranges, key=lambda r: (r.low, -r.high))
    open_ranges: list[BinRange] = []
    for current in ordered:
        while open_ranges and open_ranges[-1].high < current.low:
            open_ranges.pop()
        if open_ranges:
            outer = open_ranges[-1]
            if (outer.low, outer.high) == (current.low, current.high):
                raise BinFileError(
                    f"the range {current.bin_from}-{current.bin_to} is given twice",
                    code="parameter_invalid",
                )
            if current.high > outer.high:
                raise BinFileError(
                    f"the range {current.bin_from}-{current.bin_to} overlaps "
                    f"{outer.bin_from}-{outer.bin_to} without nesting in it",
                    code="parameter_invalid",
                )
        open_ranges.append(current)


class BinTable:
    """The ranges flattened into disjoint segments, each with its narrowest range's info."""

    def __init__(self, ranges: Iterable[BinRange]) -> None:
        items = sorted(ranges, key=lambda r: (r.low, -r.high))
        points = sorted({r.low for r in items} | {r.high + 1 for r in items})
        lows: list[int] = []
        highs: list[int] = []
        infos: list[BinInfo] = []
        active: list[tuple[int, int, int]] = []  # (width, order, index) of ranges covering
        following = 0
        for start, end in itertools.pairwise(points):
            while following < len(items) and items[following].low <= start:
                r = items[following]
                heapq.heappush(active, (r.high - r.low, following, following))
                following += 1
            while active and items[active[0][2]].high < start:
                heapq.heappop(active)
            if not active:
                continue
            info = items[active[0][2]].info
            if infos and highs[-1] == start - 1 and infos[-1] == info:
                highs[-1] = end - 1
            else:
                lows.append(start)
                highs.append(end - 1)
                infos.append(info)
        self._lows, self._highs, self._infos = lows, highs, infos
        self.size = len(items)

    def lookup(self, digits: str) -> BinInfo | None:
        key = bin_key(digits)
        at = bisect.bisect_right(self._lows, key) - 1
        if at < 0 or key > self._highs[at]:
            return None
        return self._infos[at]
