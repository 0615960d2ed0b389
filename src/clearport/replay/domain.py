"""Replay of history: what a window of past payments would have done under candidate rules.

Every payment of the window, in the order it was made, goes through the candidate risk rules
(velocity counted over the replay itself) and, unless they block it, the candidate routing rules.
Each connector's projected approval rate is what it was observed to approve in the same window:
for the payment's 8-digit BIN when that connector saw at least `MIN_SAMPLES` attempts of it,
else for its brand, currency and amount band, else its brand, else the connector overall, else
the window's overall rate (decision 0530). Projected fees are each payment's fee if captured
in full, weighted by that probability, summed exactly and rounded once per connector and
currency. Nothing here reads a clock or a random number: the same inputs give the same report.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from clearport.risk.domain import RiskRuleSet, Velocity, VelocityCount, screen
from clearport.routing.domain import RuleSet, decide
from clearport.rulesets.domain import Facts

MIN_SAMPLES = 20
MAX_LISTED = 100  # payment ids listed per change (newly blocked, released); counts are exact
UNROUTED = "(unrouted)"  # a payment released by the candidate risk rules, with no routing rules
BPS = 10_000


def amount_band(amount: int) -> int:
    """The order of magnitude of an amount in minor units (digits): 1 000-9 999 is band 4."""
    return len(str(max(amount, 0)))


@dataclass(frozen=True, slots=True)
class PastPayment:
    facts: Facts
    created_at: datetime
    connector: str  # '' when it was blocked
    blocked: bool  # by the risk rules active then


@dataclass(frozen=True, slots=True)
class Observed:
    """Approvals over attempts, at each level the projection may use."""

    by_bin: Mapping[tuple[str, str], tuple[int, int]]  # (connector, bin) -> (approved, tried)
    by_band: Mapping[tuple[str, str, str, int], tuple[int, int]]  # connector, brand, cur, band
    by_brand: Mapping[tuple[str, str], tuple[int, int]]
    by_connector: Mapping[str, tuple[int, int]]
    overall: tuple[int, int]

    def rate(self, connector: str, facts: Facts) -> Fraction:
        levels: list[tuple[int, int] | None] = [
            self.by_bin.get((connector, facts.bin)),
            self.by_band.get((connector, facts.brand, facts.currency, amount_band(facts.amount))),
            self.by_brand.get((connector, facts.brand)),
        ]
        for seen in levels:
            if seen is not None and seen[1] >= MIN_SAMPLES:
                return Fraction(seen[0], seen[1])
        overall = self.by_connector.get(connector)
        if overall is not None and overall[1] > 0:
            return Fraction(overall[0], overall[1])
        if self.overall[1] > 0:
            return Fraction(self.overall[0], self.overall[1])
        return Fraction(1)


@dataclass(slots=True)
class ConnectorTally:
    count: int = 0
    amounts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    approved: Fraction = Fraction(0)  # expected approvals
    fees: dict[str, Fraction] = field(default_factory=lambda: defaultdict(Fraction))

    def as_json(self, connector: str) -> dict[str, Any]:
        rate = self.approved / self.count if self.count else Fraction(0)
        return {
            "connector": connector,
            "count": self.count,
            "volume": [{"currency": c, "amount": a} for c, a in sorted(self.amounts.items())],
            "projected_approval_rate_bps": round(rate * BPS),
            "projected_approved": round(self.approved),
            "projected_fees": [
                {"currency": c, "amount": round(f)} for c, f in sorted(self.fees.items())
            ],
        }


class _Velocity:
    """The replay's own velocity counts: the payments it let through, per key, in a window."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], deque[tuple[datetime, int, str]]] = defaultdict(deque)

    def counts(self, rules: Iterable[Velocity], facts: Facts, at: datetime) -> list[VelocityCount]:
        found = []
        for rule in rules:
            key = facts.fingerprint if rule.per == "card_fingerprint" else ""
            since = at - timedelta(seconds=rule.window_s)
            recent = [e for e in self._seen[(facts.merchant, key)] if e[0] > since]
            total = sum(a for _, a, c in recent if c == rule.currency)
            found.append(VelocityCount(len(recent), total))
        return found

    def add(self, facts: Facts, at: datetime, longest_s: int) -> None:
        for key in (facts.fingerprint, ""):
            seen = self._seen[(facts.merchant, key)]
            seen.append((at, facts.amount, facts.currency))
            while seen and seen[0][0] <= at - timedelta(seconds=longest_s):
                seen.popleft()


@dataclass(slots=True)
class Replay:
    """The report being built, one past payment at a time (in the order they were made)."""

    observed: Observed
    routing: RuleSet | None
    risk: RiskRuleSet | None
    price: Callable[[Facts], Mapping[str, Fraction]]  # a payment's fees if captured in full
    payments: int = 0
    rerouted: int = 0
    blocked: int = 0
    newly_blocked: list[str] = field(default_factory=list)
    newly_blocked_count: int = 0
    released: list[str] = field(default_factory=list)
    released_count: int = 0
    tallies: dict[str, ConnectorTally] = field(default_factory=lambda: defaultdict(ConnectorTally))
    _velocity: _Velocity = field(default_factory=_Velocity)

    def add(self, past: PastPayment) -> None:
        self.payments += 1
        facts = past.facts
        blocked = past.blocked
        if self.risk is not None:
            rules = self.risk.velocity
            counts = self._velocity.counts(rules, facts, past.created_at)
            blocked = screen(self.risk, facts, counts).blocked
            if not blocked:
                longest = max((r.window_s for r in rules), default=0)
                self._velocity.add(facts, past.created_at, longest)
        if blocked and not past.blocked:
            self.newly_blocked_count += 1
            if len(self.newly_blocked) < MAX_LISTED:
                self.newly_blocked.append(facts.payment_id)
        if past.blocked and not blocked:
            self.released_count += 1
            if len(self.released) < MAX_LISTED:
                self.released.append(facts.payment_id)
        if blocked:
            self.blocked += 1
            return
        if self.routing is not None:
            connector = decide(self.routing, facts).candidates[0]
        else:
            connector = past.connector or UNROUTED
        if connector != past.connector:
            self.rerouted += 1
        tally = self.tallies[connector]
        tally.count += 1
        tally.amounts[facts.currency] += facts.amount
        rate = self.observed.rate(connector, facts)
        tally.approved += rate
        for currency, fee in self.price(facts).items():
            tally.fees[currency] += rate * fee

    def report(self) -> dict[str, Any]:
        return {
            "payments": self.payments,
            "rerouted": self.rerouted,
            "blocked": self.blocked,
            "newly_blocked": {"count": self.newly_blocked_count, "payments": self.newly_blocked},
            "released": {"count": self.released_count, "payments": self.released},
            "connectors": [t.as_json(c) for c, t in sorted(self.tallies.items())],
        }
