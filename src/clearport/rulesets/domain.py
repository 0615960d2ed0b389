"""A rule set's record and lifecycle, whatever its rules are.

A rule set is created as a `draft` with the next version of its kind. Activating it makes it the
one `active` set of its kind and the previous active one `inactive`, in one transaction; an
inactive set may be activated again (a rollback is an activation of the previous version).
Rules are never edited in place: a change is a new version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")

RULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
BIN_DIGITS = 8


class RuleSetStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    INACTIVE = "inactive"


@dataclass(frozen=True, slots=True)
class RuleSetRecord:
    id: str
    version: int
    status: RuleSetStatus
    body: dict[str, Any]  # the set as the API takes it
    created_at: datetime
    activated_at: datetime | None = None
    deactivated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ActiveSet(Generic[T]):
    """The active set of a kind: its record and its rules, parsed."""

    record: RuleSetRecord
    rules: T


@dataclass(frozen=True, slots=True)
class Facts:
    """What routing knows about a payment (and risk, which shares it)."""

    payment_id: str
    merchant: str
    mcc: str
    amount: int
    currency: str
    brand: str
    bin: str  # the card's BIN as shown (8 digits, 6 for short card numbers)
    funding: str | None
    issuer_country: str | None
    fingerprint: str = ""
    category: str | None = None  # consumer or commercial, from the BIN table (pricing's)

    @property
    def bin_key(self) -> int:
        return int(self.bin[:BIN_DIGITS].ljust(BIN_DIGITS, "0"))

    def value(self, name: str) -> str:
        """A categorical fact; '' for one not known."""
        value: str | None = getattr(self, name)
        return value or ""
