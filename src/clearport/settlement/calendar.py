"""Banking days per currency, from the maintained `holidays` package: a payout arrives on a day
the banks of its currency settle (decision 0702).

USD follows the Federal Reserve's calendar (the ACH operator's), EUR the TARGET2 calendar of the
ECB (SEPA's); every other currency its country's public holidays and weekend (Friday and Saturday
in Kuwait, for instance). Calendars are built per year on first use and kept.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays

from clearport.core.errors import InvariantViolation, invariant
from clearport.core.money import CURRENCY_EXPONENTS

# Financial calendars by name (holidays.financial_holidays) for the currencies that have one.
_FINANCIAL = {"usd": "FED", "eur": "ECB"}
# The country whose bank holidays and weekend a currency follows; (country, subdivision).
_COUNTRY: dict[str, tuple[str, str | None]] = {
    "gbp": ("GB", "ENG"),
    "chf": ("CH", None),
    "cad": ("CA", None),
    "aud": ("AU", None),
    "nzd": ("NZ", None),
    "sek": ("SE", None),
    "nok": ("NO", None),
    "dkk": ("DK", None),
    "pln": ("PL", None),
    "czk": ("CZ", None),
    "huf": ("HU", None),
    "ron": ("RO", None),
    "sgd": ("SG", None),
    "hkd": ("HK", None),
    "mxn": ("MX", None),
    "brl": ("BR", None),
    "inr": ("IN", None),
    "zar": ("ZA", None),
    "cny": ("CN", None),
    "ils": ("IL", None),
    "aed": ("AE", None),
    "try": ("TR", None),
    "jpy": ("JP", None),
    "krw": ("KR", None),
    "clp": ("CL", None),
    "isk": ("IS", None),
    "vnd": ("VN", None),
    "kwd": ("KW", None),
    "bhd": ("BH", None),
    "jod": ("JO", None),
    "omr": ("OM", None),
    "tnd": ("TN", None),
}
invariant(
    set(_FINANCIAL) | set(_COUNTRY) == set(CURRENCY_EXPONENTS),
    "every supported currency has a banking calendar",
)
# No calendar has a run of closed days this long; a bound so a bad calendar cannot loop.
_MAX_CLOSED_DAYS = 31


@lru_cache(maxsize=512)
def _calendar(currency: str, year: int) -> holidays.HolidayBase:
    if currency in _FINANCIAL:
        return holidays.financial_holidays(_FINANCIAL[currency], years=year)
    country, subdivision = _COUNTRY[currency]
    return holidays.country_holidays(country, subdiv=subdivision, years=year)


class HolidayCalendar:
    """`settlement.ports.BankingCalendar` over the `holidays` package."""

    def is_banking_day(self, currency: str, day: date) -> bool:
        calendar = _calendar(currency, day.year)
        return day.weekday() not in calendar.weekend and day not in calendar

    def next_banking_day(self, currency: str, on: date) -> date:
        """`on` if the banks of `currency` are open that day, else the next day they are."""
        day = on
        for _ in range(_MAX_CLOSED_DAYS):
            if self.is_banking_day(currency, day):
                return day
            day += timedelta(days=1)
        raise InvariantViolation(f"no banking day in {currency} within a month of {on}")
