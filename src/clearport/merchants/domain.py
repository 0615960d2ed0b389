"""Merchant lifecycle and terms validation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from clearport.core.errors import InvalidRequest, InvalidState


class MerchantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


# Closed is terminal: a closed merchant's data may be crypto-shredded, so it never reopens.
_TRANSITIONS: dict[MerchantStatus, frozenset[MerchantStatus]] = {
    MerchantStatus.ACTIVE: frozenset({MerchantStatus.SUSPENDED, MerchantStatus.CLOSED}),
    MerchantStatus.SUSPENDED: frozenset({MerchantStatus.ACTIVE, MerchantStatus.CLOSED}),
    MerchantStatus.CLOSED: frozenset(),
}


def check_status_transition(current: MerchantStatus, target: MerchantStatus) -> None:
    if target == current:
        return
    if target not in _TRANSITIONS[current]:
        raise InvalidState(
            f"A merchant with status '{current}' cannot become '{target}'.", field="status"
        )


MAX_PAYOUT_DELAY_DAYS = 90  # the schema's CHECK too
MAX_NAME_CHARS = 200


def validate_name(name: str) -> str:
    """A merchant's name: 1 to MAX_NAME_CHARS characters (control characters are refused where
    text arrives, by the API's and the console's text rule)."""
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise InvalidRequest(f"'name' must be 1 to {MAX_NAME_CHARS} characters.", field="name")
    return name


def validate_payout_delay(days: int) -> int:
    """Days between a settlement and its payout: 0 to MAX_PAYOUT_DELAY_DAYS (every caller's rule:
    the API's schema states it, the console's forms reach it here)."""
    if not 0 <= days <= MAX_PAYOUT_DELAY_DAYS:
        raise InvalidRequest(
            f"'payout_delay_days' must be 0 to {MAX_PAYOUT_DELAY_DAYS}.", field="payout_delay_days"
        )
    return days


def validate_mcc(mcc: str) -> str:
    if len(mcc) != 4 or not mcc.isdigit() or not mcc.isascii():
        raise InvalidRequest("'mcc' must be a 4-digit merchant category code.", field="mcc")
    return mcc


@dataclass(slots=True)
class Merchant:
    id: str
    name: str
    country: str
    mcc: str
    default_currency: str
    status: MerchantStatus
    pricing: dict[str, Any]
    payout_delay_days: int
    reserve: dict[str, Any]
    metadata: dict[str, str]
    created_at: datetime

    @property
    def can_transact(self) -> bool:
        return self.status is MerchantStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class MerchantGate:
    """What a payment needs to know about its merchant before it starts, read in one go."""

    status: MerchantStatus
    require_cvc: bool  # the merchant's payment setting: refuse card payments without a CVC
    mcc: str = ""  # what routing rules may match on


# Example terms for a merchant onboarded without its own. Fixed amounts are per currency, in
# minor units of each (decision 0703): a currency not named has no fixed fee, and no dispute fee.
DEFAULT_FIXED_FEE_MINOR: dict[str, int] = {
    "usd": 30, "eur": 25, "gbp": 20, "cad": 30, "aud": 30, "chf": 30, "jpy": 40, "kwd": 100,
}  # fmt: skip
# Keep equal to migration 0010's fee for merchants onboarded before dispute fees existed.
DEFAULT_DISPUTE_FEE_MINOR: dict[str, int] = {
    "usd": 1500, "eur": 1500, "gbp": 1500, "cad": 1500, "aud": 2500, "chf": 1500, "jpy": 2000,
    "kwd": 5000,
}  # fmt: skip

DEFAULT_PRICING: dict[str, Any] = {
    "model": "blended",
    "percent_bps": 290,
    "fixed_minor": DEFAULT_FIXED_FEE_MINOR,
    "brand_overrides": {},
    "dispute_fee_minor": DEFAULT_DISPUTE_FEE_MINOR,
}


def dispute_fee_minor(pricing: dict[str, Any], currency: str) -> int:
    """What a chargeback in `currency` costs the merchant under its pricing (0 where it names
    no fee in that currency)."""
    fees = pricing.get("dispute_fee_minor") or {}
    fee = fees.get(currency, 0) if isinstance(fees, dict) else 0
    return fee if type(fee) is int and fee >= 0 else 0


DEFAULT_RESERVE: dict[str, Any] = {"percent_bps": 0, "hold_days": 0}

DEFAULT_PAYOUT_DELAY_DAYS = 2
