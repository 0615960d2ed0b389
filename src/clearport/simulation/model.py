"""The simulator's own account of the run: what it asked for and what it was told, kept apart
from Clearport's tables so the invariants compare two independent records (three, with the
processor's).

Requests are remembered by Idempotency-Key: what was sent, every answer it got, and the first
success, which every later replay must repeat byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    key: str
    kind: str  # payment | capture | void | refund | dispute | adjustment
    method: str
    path: str
    body: dict[str, Any]
    secret: str
    answers: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def succeeded(self) -> tuple[int, bytes] | None:
        for status, body in self.answers:
            if 200 <= status < 300:
                return status, body
        return None

    @property
    def settled(self) -> bool:
        """Answered for good: a success or a refusal (a 4xx), not a technical failure."""
        return any(200 <= s < 500 for s, _ in self.answers)


@dataclass
class KnownPayment:
    id: str
    merchant: int
    amount: int
    currency: str
    connector: str
    status: str  # as last acknowledged
    captured: int = 0  # acknowledged captures
    refunded: int = 0  # acknowledged successful refunds
    voided: bool = False


@dataclass
class Model:
    requests: dict[str, Request] = field(default_factory=dict)
    payments: list[KnownPayment] = field(default_factory=list)
    tokens: dict[int, list[str]] = field(default_factory=dict)
    adjustments: dict[str, int] = field(default_factory=dict)  # id: amount
    disputes: dict[str, int] = field(default_factory=dict)  # id: amount
    settled_dates: list[str] = field(default_factory=list)
    card_numbers: set[str] = field(default_factory=set)

    def payment(self, payment_id: str) -> KnownPayment | None:
        for p in self.payments:
            if p.id == payment_id:
                return p
        return None

    def sent(self, kind: str) -> int:
        return sum(1 for r in self.requests.values() if r.kind == kind)
