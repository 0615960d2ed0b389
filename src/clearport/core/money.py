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

# ISO 4217 numeric codes of the same currencies: what ISO 8583 carries (DE49).
CURRENCY_NUMERIC: dict[str, str] = {
    "usd": "840",
    "eur": "978",
    "gbp": "826",
    "chf": "756",
    "cad": "124",
    "aud": "036",
    "nzd": "554",
    "sek": "752",
    "nok": "578",
    "dkk": "208",
    "pln": "985",
    "czk": "203",
    "huf": "348",
    "ron": "946",
    "sgd": "702",
    "hkd": "344",
    "mxn": "484",
    "brl": "986",
    "inr": "356",
    "zar": "710",
    "cny": "156",
    "ils": "376",
    "aed": "784",
    "try": "949",
    "jpy": "392",
    "krw": "410",
    "clp": "152",
    "isk": "352",
    "vnd": "704",
    "kwd": "414",
    "bhd": "048",
    "jod": "400",
    "omr": "512",
    "tnd": "788",
}
CURRENCY_OF_NUMERIC: dict[str, str] = {code: alpha for alpha, code in CURRENCY_NUMERIC.items()}

# Upper bound for any single amount: fits BIGINT sums of millions of items with room to spare.
MAX_AMOUNT_MINOR = 10**12

# The largest amount one payment, dispute or adjustment may carry, per currency, by default: about
# one million US dollars, rounded, so that a cap means the same money in every currency (one
# number of minor units would allow ¥100,000,000 and 100,000.000 KWD alike). Deployments change
# any of them (CLEARPORT_PAYMENT_MAX_AMOUNT_MINOR).
DEFAULT_MAX_AMOUNT_MINOR: dict[str, int] = {
    currency: 10 ** (6 + exp) for currency, exp in CURRENCY_EXPONENTS.items()
} | {
    "sek": 1_000_000_000,
    "nok": 1_000_000_000,
    "dkk": 500_000_000,
    "pln": 400_000_000,
    "czk": 2_000_000_000,
    "huf": 30_000_000_000,
    "ron": 500_000_000,
    "hkd": 1_000_000_000,
    "mxn": 2_000_000_000,
    "brl": 500_000_000,
    "inr": 8_000_000_000,
    "zar": 2_000_000_000,
    "cny": 500_000_000,
    "ils": 400_000_000,
    "aed": 400_000_000,
    "try": 3_000_000_000,
    "jpy": 150_000_000,
    "krw": 1_400_000_000,
    "clp": 1_000_000_000,
    "isk": 150_000_000,
    "vnd": 25_000_000_000,
    "kwd": 300_000_000,
    "bhd": 400_000_000,
    "jod": 700_000_000,
    "omr": 400_000_000,
    "tnd": 3_000_000_000,
}


def per_currency_caps(overrides: dict[str, int]) -> dict[str, int]:
    """The default caps with `overrides` (currency -> minor units) applied; a currency that is
    not supported, or a cap outside 1..MAX_AMOUNT_MINOR, is a ValueError."""
    for currency, cap in overrides.items():
        if currency not in CURRENCY_EXPONENTS:
            raise ValueError(f"{currency!r} is not a supported currency")
        if type(cap) is not int or not 0 < cap <= MAX_AMOUNT_MINOR:
            raise ValueError(f"the cap for {currency} must be 1..{MAX_AMOUNT_MINOR} minor units")
    return DEFAULT_MAX_AMOUNT_MINOR | overrides


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
