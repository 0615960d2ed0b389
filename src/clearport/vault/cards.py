"""Card data rules shared by the vault, payments and the log redactor.

A card number or CVC lives in memory only inside `SensitiveStr`, whose `repr`/`str` are masked:
printing, logging, formatting into an exception or pickling it never yields the plaintext. The one
way out is `.reveal()`, called by the vault (to encrypt) and by connectors (to send it on).

Validation raises `InvalidRequest` naming the parameter and never quoting the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from clearport.core.errors import InvalidRequest
from clearport.core.sensitive import SensitiveStr, luhn_valid

BRANDS = ("visa", "mastercard", "amex", "discover", "jcb", "diners", "unionpay", "maestro")

HOLDER_NAME_MAX = 100

# How far ahead an expiry may be: cards are issued for at most a few years; 50 catches typos.
MAX_EXPIRY_YEARS_AHEAD = 50


@dataclass(frozen=True)
class CardInput:
    number: SensitiveStr
    exp_month: int
    exp_year: int
    holder_name: str | None = None


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


def validate_number(number: SensitiveStr, *, param: str) -> tuple[str, str]:
    """(normalized digits, brand), or a 400 naming `param` (the value is never quoted)."""
    digits = normalize_number(number.reveal())
    if not digits.isascii() or not digits.isdigit():
        raise InvalidRequest(f"'{param}' must contain digits only.", param=param)
    if not 12 <= len(digits) <= 19:
        raise InvalidRequest(f"'{param}' must have 12 to 19 digits.", param=param)
    if not luhn_valid(digits):
        raise InvalidRequest(
            f"'{param}' is not a valid card number.", param=param, code="incorrect_number"
        )
    brand = detect_brand(digits)
    if brand is None:
        raise InvalidRequest(
            f"'{param}' is not a card brand we accept.", param=param, code="card_brand_unsupported"
        )
    if len(digits) not in allowed_lengths(brand):
        raise InvalidRequest(
            f"'{param}' has the wrong length for a {brand} card.",
            param=param,
            code="incorrect_number",
        )
    return digits, brand


def validate_expiry(exp_month: int, exp_year: int, today: date, *, param_prefix: str) -> None:
    month_param, year_param = f"{param_prefix}[exp_month]", f"{param_prefix}[exp_year]"
    if isinstance(exp_month, bool) or not isinstance(exp_month, int) or not 1 <= exp_month <= 12:
        raise InvalidRequest(f"'{month_param}' must be 1 to 12.", param=month_param)
    if (
        isinstance(exp_year, bool)
        or not isinstance(exp_year, int)
        or not today.year - 100 <= exp_year <= today.year + MAX_EXPIRY_YEARS_AHEAD
    ):
        raise InvalidRequest(
            f"'{year_param}' must be a four-digit year within {MAX_EXPIRY_YEARS_AHEAD} years.",
            param=year_param,
        )
    # A card is valid through the last day of its expiry month.
    if exp_year < today.year:
        raise InvalidRequest(
            f"'{year_param}' is in the past.", param=year_param, code="expired_card"
        )
    if exp_year == today.year and exp_month < today.month:
        raise InvalidRequest(
            f"'{month_param}' is in the past.", param=month_param, code="expired_card"
        )


def validate_holder_name(name: str | None, *, param: str) -> None:
    if name is None:
        return
    if not isinstance(name, str) or not 1 <= len(name) <= HOLDER_NAME_MAX:
        raise InvalidRequest(f"'{param}' must be 1 to {HOLDER_NAME_MAX} characters.", param=param)
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidRequest(f"'{param}' must not contain control characters.", param=param)


def validate_card(card: CardInput, today: date, *, param_prefix: str = "card") -> str:
    """The card's brand, or a 400 naming the first bad field."""
    _, brand = validate_number(card.number, param=f"{param_prefix}[number]")
    validate_expiry(card.exp_month, card.exp_year, today, param_prefix=param_prefix)
    validate_holder_name(card.holder_name, param=f"{param_prefix}[holder_name]")
    return brand


def validate_cvc(cvc: SensitiveStr, brand: str, *, param: str = "cvc") -> None:
    """3 digits, 4 for American Express."""
    value = cvc.reveal()
    expected = 4 if brand == "amex" else 3
    if len(value) != expected or not value.isascii() or not value.isdigit():
        raise InvalidRequest(
            f"'{param}' must be {expected} digits for this card.",
            param=param,
            code="incorrect_cvc",
        )
