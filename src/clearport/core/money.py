"""Money: integer minor units plus a lower-case ISO 4217 currency. Never floats."""

from __future__ import annotations

from dataclasses import dataclass

from clearport.core.errors import Field, InvalidRequest

# ISO 4217 minor-unit exponents for the currencies Clearport accepts.
CURRENCY_EXPONENTS: dict[str, int] = {
    "usd": 2,
    "eur": 2,
    "gbp": 2,
    "chf": 2,
    "cad": 2,
    "aud": 2,
    "nzd": 2,
    "sek": 2,
    "nok": 2,
    "dkk": 2,
    "pln": 2,
    "czk": 2,
    "huf": 2,
    "ron": 2,
    "sgd": 2,
    "hkd": 2,
    "mxn": 2,
    "brl": 2,
    "inr": 2,
    "zar": 2,
    "cny": 2,
    "ils": 2,
    "aed": 2,
    "try": 2,
    "jpy": 0,
    "krw": 0,
    "clp": 0,
    "isk": 0,
    "vnd": 0,
    "kwd": 3,
    "bhd": 3,
    "jod": 3,
    "omr": 3,
    "tnd": 3,
}

# Upper bound for any single amount: fits BIGINT sums of millions of items with room to spare.
MAX_AMOUNT_MINOR = 10**12


def parse_currency(value: str, *, field: Field | str = "currency") -> str:
    if value not in CURRENCY_EXPONENTS:
        raise InvalidRequest(
            "'{field}' must be a supported lower-case ISO 4217 code.",
            code="currency_unsupported",
            field=field,
        )
    return value


def exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS[currency]


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount_minor) is not int:
            raise TypeError("amount_minor must be an int")
        parse_currency(self.currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")
