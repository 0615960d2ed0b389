"""Routing rules: what a rule says, how a payment is matched, and the decision it gets.

A rule set is an ordered list of rules and a default. A rule is `when` (conditions, all of which
must hold) and `then` (an ordered list of candidate connectors, or a weighted split). The first
rule whose conditions hold decides; with none, the default's candidates. A split is
deterministic per payment id, so a retry of the same payment routes the same way; the split's
other connectors follow the chosen one as failover candidates, heaviest first.

Conditions (API.md "Routing and risk"): `brand`, `funding`, `issuer_country`, `currency`,
`merchant`, `mcc` (each one value or a list: any of them), `bin_prefix` or `bin_range`
(compared over the card's 8-digit BIN), `amount_gte` / `amount_lt` (minor units of the one
`currency` the rule names). An unknown funding or issuer country (a BIN not in the BIN table)
matches no condition on it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearport.core.errors import Field, InvalidRequest
from clearport.rulesets.domain import BIN_DIGITS, RULE_NAME, Facts
from clearport.vault.cards import BRANDS

MAX_RULES = 200
MAX_VALUES = 500
MAX_CANDIDATES = 10
MAX_WEIGHT = 10_000
MAX_BIN = 10**BIN_DIGITS - 1
MAX_AMOUNT = 10**15  # past any real payment; bounds the amount dimension
CATEGORICAL = ("brand", "funding", "issuer_country", "currency", "merchant", "mcc")
FUNDINGS = ("credit", "debit", "prepaid")
_VALUE_RULES: Mapping[str, tuple[re.Pattern[str], str]] = {
    "brand": (re.compile(r"^[a-z]{2,20}$"), "one of " + ", ".join(BRANDS)),
    "funding": (re.compile(r"^(credit|debit|prepaid)$"), "credit, debit or prepaid"),
    "issuer_country": (re.compile(r"^[A-Z]{2}$"), "an ISO 3166 alpha-2 code"),
    "currency": (re.compile(r"^[a-z]{3}$"), "a lower-case ISO 4217 code"),
    "merchant": (re.compile(r"^mer_[0-9A-Za-z]{1,40}$"), "a merchant id"),
    "mcc": (re.compile(r"^[0-9]{4}$"), "a four-digit MCC"),
}
CONNECTOR_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True, slots=True)
class Condition:
    """All given parts must hold. A categorical part is the set of values allowed."""

    values: Mapping[str, frozenset[str]]
    bin_low: int | None = None  # inclusive, over 8-digit BINs
    bin_high: int | None = None
    amount_gte: int | None = None
    amount_lt: int | None = None

    def matches(self, facts: Facts) -> bool:
        for name, allowed in self.values.items():
            if facts.value(name) not in allowed:
                return False
        if self.bin_low is not None and self.bin_high is not None:
            key = facts.bin_key
            if key < self.bin_low or key > self.bin_high:
                return False
        if self.amount_gte is not None and facts.amount < self.amount_gte:
            return False
        return self.amount_lt is None or facts.amount < self.amount_lt


@dataclass(frozen=True, slots=True)
class Split:
    weights: tuple[tuple[str, int], ...]  # (connector, weight), as given

    def choose(self, payment_id: str, rule: str) -> tuple[tuple[str, ...], int, int]:
        """(candidates with the chosen first, the payment's bucket, the total weight)."""
        total = sum(w for _, w in self.weights)
        digest = hashlib.sha256(f"{rule}\x00{payment_id}".encode()).digest()
        bucket = int.from_bytes(digest[:8], "big") % total
        running = 0
        chosen = self.weights[-1][0]
        for connector, weight in self.weights:
            running += weight
            if bucket < running:
                chosen = connector
                break
        rest = sorted(
            (c for c, _ in self.weights if c != chosen),
            key=lambda c: -dict(self.weights)[c],
        )
        return (chosen, *rest), bucket, total


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    when: Condition
    connectors: tuple[str, ...] = ()  # an ordered list of candidates
    split: Split | None = None

    @property
    def named_connectors(self) -> tuple[str, ...]:
        if self.split is not None:
            return tuple(c for c, _ in self.split.weights)
        return self.connectors


@dataclass(frozen=True, slots=True)
class RuleSet:
    id: str
    version: int
    rules: tuple[Rule, ...]
    default: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """Which rule decided, its candidates in order and why (`routing` on the payment)."""

    rule_set: str | None
    version: int | None
    rule: str
    candidates: tuple[str, ...]
    reason: str


def decide(rule_set: RuleSet, facts: Facts) -> Decision:
    for rule in rule_set.rules:
        if not rule.when.matches(facts):
            continue
        if rule.split is not None:
            candidates, bucket, total = rule.split.choose(facts.payment_id, rule.name)
            reason = f"rule '{rule.name}' matched; split bucket {bucket} of {total}"
            return Decision(rule_set.id, rule_set.version, rule.name, candidates, reason)
        reason = f"rule '{rule.name}' matched"
        return Decision(rule_set.id, rule_set.version, rule.name, rule.connectors, reason)
    return Decision(
        rule_set.id, rule_set.version, "default", rule_set.default, "no rule matched: the default"
    )


# --- parsing (the API's JSON, already shaped by its schema) -----------------------------------


def _invalid(message: str, field: Field) -> InvalidRequest:
    """A rule the API's schema lets through but the rules refuse (`rule_invalid`)."""
    return InvalidRequest(message, field=field, code="rule_invalid")


def _values(raw: Any, name: str, field: Field) -> frozenset[str]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise _invalid("'{field}' must be a string or a list of strings.", field)
    if len(items) > MAX_VALUES:
        raise _invalid(f"'{{field}}' lists more than {MAX_VALUES} values.", field)
    pattern, what = _VALUE_RULES[name]
    for value in items:
        if not pattern.match(value) or (name == "brand" and value not in BRANDS):
            raise _invalid(f"'{{field}}' must be {what}.", field)
    return frozenset(items)


def _bin_bounds(when: Mapping[str, Any], field: Field) -> tuple[int | None, int | None]:
    prefix, span = when.get("bin_prefix"), when.get("bin_range")
    if prefix is not None and span is not None:
        raise _invalid("'{field}' cannot be given with bin_prefix.", (*field, "bin_range"))
    if prefix is not None:
        if not isinstance(prefix, str) or not re.fullmatch(r"[0-9]{1,8}", prefix):
            raise _invalid("'{field}' must be 1 to 8 digits.", (*field, "bin_prefix"))
        return int(prefix.ljust(BIN_DIGITS, "0")), int(prefix.ljust(BIN_DIGITS, "9"))
    if span is not None:
        where = (*field, "bin_range")
        if (
            not isinstance(span, list)
            or len(span) != 2
            or not all(isinstance(s, str) and re.fullmatch(r"[0-9]{1,8}", s) for s in span)
            or len(span[0]) != len(span[1])
        ):
            raise _invalid("'{field}' must be two digit strings of equal length (1 to 8).", where)
        return int(span[0].ljust(BIN_DIGITS, "0")), int(span[1].ljust(BIN_DIGITS, "9"))
    return None, None


def _amount(raw: Any, field: Field) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_AMOUNT:
        raise _invalid(f"'{{field}}' must be an integer from 0 to {MAX_AMOUNT}.", field)
    return raw


_WHEN_KEYS = frozenset({*CATEGORICAL, "bin_prefix", "bin_range", "amount_gte", "amount_lt"})


def parse_condition(when: Mapping[str, Any], field: Field) -> Condition:
    unknown = sorted(set(when) - _WHEN_KEYS)
    if unknown:
        raise _invalid("'{field}' is not a condition.", (*field, unknown[0]))
    values = {
        name: _values(when[name], name, (*field, name))
        for name in CATEGORICAL
        if when.get(name) is not None
    }
    low, high = _bin_bounds(when, field)
    gte = _amount(when.get("amount_gte"), (*field, "amount_gte"))
    lt = _amount(when.get("amount_lt"), (*field, "amount_lt"))
    if (gte is not None or lt is not None) and len(values.get("currency", ())) != 1:
        raise _invalid(
            "An amount condition needs exactly one 'currency': amounts are in its minor units.",
            (*field, "currency"),
        )
    return Condition(values, low, high, gte, lt)


def _connectors(raw: Any, field: Field) -> tuple[str, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CANDIDATES:
        raise _invalid(f"'{{field}}' must list 1 to {MAX_CANDIDATES} connectors.", field)
    for name in raw:
        if not isinstance(name, str) or not CONNECTOR_NAME.match(name):
            raise _invalid("'{field}' must name connectors.", field)
    if len(set(raw)) != len(raw):
        raise _invalid("'{field}' names a connector twice.", field)
    return tuple(raw)


def _split(raw: Any, field: Field) -> Split:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CANDIDATES:
        raise _invalid(f"'{{field}}' must have 1 to {MAX_CANDIDATES} entries.", field)
    weights: list[tuple[str, int]] = []
    for i, entry in enumerate(raw):
        where = (*field, str(i))
        if not isinstance(entry, Mapping) or set(entry) != {"connector", "weight"}:
            raise _invalid("'{field}' must be {connector, weight}.", where)
        connector, weight = entry["connector"], entry["weight"]
        if not isinstance(connector, str) or not CONNECTOR_NAME.match(connector):
            raise _invalid("'{field}' must name a connector.", (*where, "connector"))
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
            raise _invalid(
                f"'{{field}}' must be an integer from 1 to {MAX_WEIGHT}.", (*where, "weight")
            )
        weights.append((connector, weight))
    if len({c for c, _ in weights}) != len(weights):
        raise _invalid("'{field}' names a connector twice.", field)
    return Split(tuple(weights))


def parse_rule(raw: Mapping[str, Any], field: Field) -> Rule:
    name = raw.get("name")
    if not isinstance(name, str) or not RULE_NAME.match(name):
        raise _invalid(
            "'{field}' must be 1 to 63 letters, digits, '.', '-' or '_'.", (*field, "name")
        )
    when = raw.get("when") or {}
    if not isinstance(when, Mapping):
        raise _invalid("'{field}' must be an object.", (*field, "when"))
    then = raw.get("then")
    if not isinstance(then, Mapping) or len(then) != 1 or not set(then) <= {"connectors", "split"}:
        raise _invalid("'{field}' must be {connectors: [...]} or {split: [...]}.", (*field, "then"))
    condition = parse_condition(when, (*field, "when"))
    if "split" in then:
        return Rule(name, condition, split=_split(then["split"], (*field, "then", "split")))
    return Rule(
        name, condition, connectors=_connectors(then["connectors"], (*field, "then", "connectors"))
    )


def parse_rule_set(
    rule_set_id: str, version: int, rules: Sequence[Mapping[str, Any]], default: Mapping[str, Any]
) -> RuleSet:
    if len(rules) > MAX_RULES:
        raise _invalid(f"'{{field}}' has more than {MAX_RULES} rules.", ("rules",))
    parsed = tuple(parse_rule(r, ("rules", str(i))) for i, r in enumerate(rules))
    seen: set[str] = set()
    for i, rule in enumerate(parsed):
        if rule.name in seen:
            raise _invalid(
                f"'{{field}}': the name '{rule.name}' is used twice.", ("rules", str(i), "name")
            )
        seen.add(rule.name)
    candidates = _connectors(default.get("connectors"), ("default", "connectors"))
    return RuleSet(rule_set_id, version, parsed, candidates)
