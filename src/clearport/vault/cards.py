"""Card data rules shared by the vault, payments and the log redactor.

A card number or CVC lives in memory only inside `SensitiveStr`, whose `repr`/`str` are masked:
printing, logging, formatting into an exception or pickling it never yields the plaintext. The one
way out is `.reveal()`, called by the vault (to encrypt) and by connectors (to send it on).

Validation raises `InvalidRequest` naming the parameter and never quoting the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, get_args

from clearport.core.errors import Field, InvalidRequest
from clearport.core.sensitive import SensitiveStr, luhn_valid

# The brands we accept: the one list pricing, the API schema and brand detection all use.
Brand = Literal["visa", "mastercard", "amex", "discover", "jcb", "diners", "unionpay", "maestro"]
BRANDS: tuple[Brand, ...] = get_args(Brand)

MAX_HOLDER_NAME_LEN = 100

# How far ahead an expiry may be: cards are issued for at most a few years; 50 catches typos.
MAX_EXPIRY_YEARS_AHEAD = 50


@dataclass(frozen=True)
class CardInput:
    number: SensitiveStr
    exp_month: int
    exp_year: int
    holder_name: str | None = None


@dataclass(frozen=True)
class StoredCard:
    """What may be shown of a stored card: brand, BIN, last 4, expiry, fingerprint."""

    token_id: str
    merchant_id: str
    brand: str
    bin: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    # The database stamps the row when it is written (tokenize answers with the request's time).
    created_at: datetime | None = None
    # From the BIN table when the card was tokenized (`bins`); None: its BIN was not listed.
    funding: str | None = None
    category: str | None = None
    issuer_country: str | None = None


def normalize_number(raw: str) -> str:
    """Digits only: spaces and dashes that people type between groups are dropped."""
    return raw.replace(" ", "").replace("-", "")


# (brand, inclusive prefix ranges as (low, high) strings of equal length, allowed lengths).
# Order matters: the first match wins, so narrower ranges come before wider ones.
_BRAND_RULES: tuple[tuple[str, tuple[tuple[str, str], ...], frozenset[int]], ...] = (
    ("amex", (("34", "34"), ("37", "37")), frozenset({15})),
    ("visa", (("4", "4"),), frozenset({13, 16, 19})),
    ("mastercard", (("51", "55"), ("2221", "2720")), frozenset({16})),
    (
        "discover",
        (("6011", "6011"), ("644", "649"), ("65", "65"), ("622126", "622925")),
        frozenset(range(16, 20)),
    ),
    ("jcb", (("3528", "3589"),), frozenset(range(16, 20))),
    (
        "diners",
        (("300", "305"), ("3095", "3095"), ("36", "36"), ("38", "39")),
        frozenset(range(14, 20)),
    ),
    ("unionpay", (("62", "62"), ("81", "81")), frozenset(range(16, 20))),
    (
        "maestro",
        (("50", "50"), ("56", "58"), ("6304", "6304"), ("639", "639"), ("67", "67")),
        frozenset(range(12, 20)),
    ),
)


def _matches(digits: str, low: str, high: str) -> bool:
    head = digits[: len(low)]
    return len(head) == len(low) and low <= head <= high


def detect_brand(digits: str) -> str | None:
    for brand, ranges, _ in _BRAND_RULES:
        if any(_matches(digits, low, high) for low, high in ranges):
            return brand
    return None


def brand_boundaries(digits: int) -> tuple[int, ...]:
    """Where the brand may change along `digits`-digit prefixes: the brand of every prefix from
    one boundary up to the next is that of the boundary (routing's checker uses it to see whether
    a BIN condition and a brand condition can both hold)."""
    points = {0}
    for _, ranges, _ in _BRAND_RULES:
        for low, high in ranges:
            points.add(int(low.ljust(digits, "0")))
            points.add(int(high.ljust(digits, "9")) + 1)
    return tuple(sorted(p for p in points if p < 10**digits))


def allowed_lengths(brand: str) -> frozenset[int]:
    for name, _, lengths in _BRAND_RULES:
        if name == brand:
            return lengths
    raise ValueError(f"unknown brand {brand!r}")


def bin_of(digits: str) -> str:
    """The issuer identification number shown with a card: 8 digits for 16+ digit PANs."""
    return digits[:8] if len(digits) >= 16 else digits[:6]


def last4_of(digits: str) -> str:
    return digits[-4:]


def validate_number(number: SensitiveStr, *, field: Field) -> tuple[str, str]:
    """(normalized digits, brand), or a 400 naming `field` (the value is never quoted)."""
    digits = normalize_number(number.reveal())
    if not digits.isascii() or not digits.isdigit():
        raise InvalidRequest("'{field}' must contain digits only.", field=field)
    if not 12 <= len(digits) <= 19:
        raise InvalidRequest("'{field}' must have 12 to 19 digits.", field=field)
    if not luhn_valid(digits):
        raise InvalidRequest(
            "'{field}' is not a valid card number.", field=field, code="incorrect_number"
        )
    brand = detect_brand(digits)
    if brand is None:
        raise InvalidRequest(
            "'{field}' is not a card brand we accept.", field=field, code="card_brand_unsupported"
        )
    if len(digits) not in allowed_lengths(brand):
        raise InvalidRequest(
            f"'{{field}}' has the wrong length for a {brand} card.",
            field=field,
            code="incorrect_number",
        )
    return digits, brand


def validate_expiry(exp_month: int, exp_year: int, today: date, *, field_prefix: Field) -> None:
    month_field, year_field = (*field_prefix, "exp_month"), (*field_prefix, "exp_year")
    if isinstance(exp_month, bool) or not isinstance(exp_month, int) or not 1 <= exp_month <= 12:
        raise InvalidRequest("'{field}' must be 1 to 12.", field=month_field)
    if (
        isinstance(exp_year, bool)
        or not isinstance(exp_year, int)
        or not today.year - 100 <= exp_year <= today.year + MAX_EXPIRY_YEARS_AHEAD
    ):
        raise InvalidRequest(
            f"'{{field}}' must be a four-digit year within {MAX_EXPIRY_YEARS_AHEAD} years.",
            field=year_field,
        )
    # A card is valid through the last day of its expiry month.
    if exp_year < today.year:
        raise InvalidRequest("'{field}' is in the past.", field=year_field, code="expired_card")
    if exp_year == today.year and exp_month < today.month:
        raise InvalidRequest("'{field}' is in the past.", field=month_field, code="expired_card")


def validate_holder_name(name: str | None, *, field: Field) -> None:
    if name is None:
        return
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_HOLDER_NAME_LEN:
        raise InvalidRequest(
            f"'{{field}}' must be 1 to {MAX_HOLDER_NAME_LEN} characters.", field=field
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidRequest("'{field}' must not contain control characters.", field=field)


def validate_card(card: CardInput, today: date, *, field_prefix: Field = ("card",)) -> str:
    """The card's brand, or a 400 naming the first bad field."""
    _, brand = validate_number(card.number, field=(*field_prefix, "number"))
    validate_expiry(card.exp_month, card.exp_year, today, field_prefix=field_prefix)
    validate_holder_name(card.holder_name, field=(*field_prefix, "holder_name"))
    return brand


def validate_cvc(cvc: SensitiveStr, brand: str, *, field: Field | str = "cvc") -> None:
    """3 digits, 4 for American Express."""
    value = cvc.reveal()
    expected = 4 if brand == "amex" else 3
    if len(value) != expected or not value.isascii() or not value.isdigit():
        raise InvalidRequest(
            f"'{{field}}' must be {expected} digits for this card.",
            field=field,
            code="incorrect_cvc",
        )
