"""Risk rules and the decision they give a payment.

Each rule has a `name`, a `mode` (`enforce`: a hit blocks the payment; `dry_run`: a hit is
recorded on the payment and nothing else) and a kind:

- `block_list`: `field` is `bin` (values are BIN prefixes, 1 to 8 digits), `fingerprint` or
  `issuer_country`; a payment whose card has one of `values` is hit.
- `amount_limit`: a payment in `currency` above `max_amount` (minor units) is hit.
- `velocity`: per `card_fingerprint` or `merchant`, over the last `window_s` seconds, a payment
  that would make more than `max_count` payments, or more than `max_amount` in `currency`, is
  hit. Counts come from the payments already recorded (decision 0520 for its bound).
- a plug-in's kind (`clearport.risk_conditions`), with its own `params`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from clearport.core.errors import Field, InvalidRequest
from clearport.rulesets.domain import RULE_NAME, Facts

MAX_RULES = 200
MAX_VALUES = 10_000
MAX_WINDOW_S = 31 * 86_400
MAX_AMOUNT = 10**15
Mode = Literal["enforce", "dry_run"]
MODES: tuple[Mode, ...] = ("enforce", "dry_run")
BUILT_IN_KINDS = ("block_list", "amount_limit", "velocity")
_LIST_FIELDS: Mapping[str, re.Pattern[str]] = {
    "bin": re.compile(r"^[0-9]{1,8}$"),
    "fingerprint": re.compile(r"^[0-9A-Za-z_-]{8,128}$"),
    "issuer_country": re.compile(r"^[A-Z]{2}$"),
}


class RiskCondition(Protocol):
    """A plug-in's condition (entry point group `clearport.risk_conditions`)."""

    name: str

    def check(self, params: Mapping[str, Any]) -> None:
        """Raise ValueError with a message saying what is wrong with `params`."""
        ...

    def matches(self, facts: Facts, params: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True, slots=True)
class BlockList:
    field: str
    values: frozenset[str]
    # BIN prefixes are looked up by the card BIN's own prefixes of these lengths: a few set
    # lookups whatever the list's size.
    prefix_lengths: tuple[int, ...] = ()

    def hit(self, facts: Facts) -> bool:
        if self.field == "bin":
            card_bin, values = facts.bin, self.values
            return any(card_bin[:n] in values for n in self.prefix_lengths)
        if self.field == "fingerprint":
            return facts.fingerprint in self.values
        return facts.issuer_country in self.values


@dataclass(frozen=True, slots=True)
class AmountLimit:
    currency: str
    max_amount: int

    def hit(self, facts: Facts) -> bool:
        return facts.currency == self.currency and facts.amount > self.max_amount


@dataclass(frozen=True, slots=True)
class Velocity:
    per: Literal["card_fingerprint", "merchant"]
    window_s: int
    max_count: int | None
    max_amount: int | None
    currency: str | None

    def hit(self, facts: Facts, seen: VelocityCount) -> bool:
        if self.max_count is not None and seen.count + 1 > self.max_count:
            return True
        return (
            self.max_amount is not None
            and facts.currency == self.currency
            and seen.amount + facts.amount > self.max_amount
        )


@dataclass(frozen=True, slots=True)
class PluginCheck:
    condition: RiskCondition
    params: Mapping[str, Any]

    def hit(self, facts: Facts) -> bool:
        return self.condition.matches(facts, self.params)


@dataclass(frozen=True, slots=True)
class VelocityCount:
    count: int
    amount: int  # in the rule's currency (0 without one)


@dataclass(frozen=True, slots=True)
class RiskRule:
    name: str
    mode: Mode
    kind: str
    check: BlockList | AmountLimit | Velocity | PluginCheck


@dataclass(frozen=True, slots=True)
class RiskRuleSet:
    id: str
    version: int
    rules: tuple[RiskRule, ...]

    @property
    def velocity(self) -> tuple[Velocity, ...]:
        return tuple(r.check for r in self.rules if isinstance(r.check, Velocity))


@dataclass(frozen=True, slots=True)
class RiskDecision:
    rule_set: str
    version: int
    fired: tuple[RiskRule, ...] = field(default=())

    @property
    def blocked(self) -> bool:
        return any(r.mode == "enforce" for r in self.fired)

    @property
    def mode(self) -> Mode | None:
        if self.blocked:
            return "enforce"
        return "dry_run" if self.fired else None

    def as_json(self) -> dict[str, Any]:
        return {
            "rule_set": self.rule_set,
            "version": self.version,
            "rules_fired": [{"name": r.name, "kind": r.kind, "mode": r.mode} for r in self.fired],
            "mode": self.mode,
        }


def screen(rule_set: RiskRuleSet, facts: Facts, counts: Sequence[VelocityCount]) -> RiskDecision:
    """Every rule that fires, in order. `counts` are the velocity counts, one per velocity rule
    in order (`RiskRuleSet.velocity`)."""
    fired: list[RiskRule] = []
    seen = iter(counts)
    for rule in rule_set.rules:
        check = rule.check
        hit = check.hit(facts, next(seen)) if isinstance(check, Velocity) else check.hit(facts)
        if hit:
            fired.append(rule)
    return RiskDecision(rule_set.id, rule_set.version, tuple(fired))


# --- parsing ------------------------------------------------------------------------------------


def _bad(message: str, where: Field) -> InvalidRequest:
    return InvalidRequest(message, field=where, code="rule_invalid")


def _int(raw: Mapping[str, Any], key: str, where: Field, low: int, high: int) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(f"'{{field}}' must be an integer from {low} to {high}.", (*where, key))
    return value


def _currency(raw: Mapping[str, Any], where: Field) -> str | None:
    value = raw.get("currency")
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[a-z]{3}", value):
        raise _bad("'{field}' must be a lower-case ISO 4217 code.", (*where, "currency"))
    return value


_KEYS = {
    "block_list": {"field", "values"},
    "amount_limit": {"currency", "max_amount"},
    "velocity": {"per", "window_s", "max_count", "max_amount", "currency"},
}


def parse_rule(
    raw: Mapping[str, Any], where: Field, plugins: Mapping[str, RiskCondition]
) -> RiskRule:
    name, mode, kind = raw.get("name"), raw.get("mode"), raw.get("kind")
    if not isinstance(name, str) or not RULE_NAME.match(name):
        raise _bad("'{field}' must be 1 to 63 letters, digits, '.', '-' or '_'.", (*where, "name"))
    if mode not in MODES:
        raise _bad("'{field}' must be 'enforce' or 'dry_run'.", (*where, "mode"))
    if not isinstance(kind, str) or (kind not in _KEYS and kind not in plugins):
        known = ", ".join([*BUILT_IN_KINDS, *sorted(plugins)])
        raise _bad(f"'{{field}}' must be one of: {known}.", (*where, "kind"))
    allowed = _KEYS.get(kind, {"params"}) | {"name", "mode", "kind"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _bad("'{field}' is not a parameter of this kind of rule.", (*where, unknown[0]))
    check: BlockList | AmountLimit | Velocity | PluginCheck
    match kind:
        case "block_list":
            check = _block_list(raw, where)
        case "amount_limit":
            currency = _currency(raw, where)
            limit = _int(raw, "max_amount", where, 0, MAX_AMOUNT)
            if currency is None or limit is None:
                raise _bad("An amount limit needs 'currency' and 'max_amount'.", where)
            check = AmountLimit(currency, limit)
        case "velocity":
            check = _velocity(raw, where)
        case _:
            params = raw.get("params") or {}
            if not isinstance(params, Mapping):
                raise _bad("'{field}' must be an object.", (*where, "params"))
            try:
                plugins[kind].check(params)
            except ValueError as exc:
                raise _bad(f"'{{field}}': {exc}", (*where, "params")) from None
            check = PluginCheck(plugins[kind], dict(params))
    return RiskRule(name, mode, kind, check)


def _block_list(raw: Mapping[str, Any], where: Field) -> BlockList:
    kind_field, values = raw.get("field"), raw.get("values")
    if not isinstance(kind_field, str) or kind_field not in _LIST_FIELDS:
        raise _bad("'{field}' must be bin, fingerprint or issuer_country.", (*where, "field"))
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_VALUES:
        raise _bad(f"'{{field}}' must list 1 to {MAX_VALUES} values.", (*where, "values"))
    pattern = _LIST_FIELDS[kind_field]
    if not all(isinstance(v, str) and pattern.match(v) for v in values):
        raise _bad(f"'{{field}}' has a value that is not a {kind_field}.", (*where, "values"))
    lengths = tuple(sorted({len(v) for v in values})) if kind_field == "bin" else ()
    return BlockList(kind_field, frozenset(values), lengths)


def _velocity(raw: Mapping[str, Any], where: Field) -> Velocity:
    per = raw.get("per")
    if per not in ("card_fingerprint", "merchant"):
        raise _bad("'{field}' must be 'card_fingerprint' or 'merchant'.", (*where, "per"))
    window = _int(raw, "window_s", where, 1, MAX_WINDOW_S)
    if window is None:
        raise _bad("A velocity rule needs '{field}'.", (*where, "window_s"))
    max_count = _int(raw, "max_count", where, 0, 1_000_000)
    max_amount = _int(raw, "max_amount", where, 0, MAX_AMOUNT)
    currency = _currency(raw, where)
    if max_count is None and max_amount is None:
        raise _bad("A velocity rule needs 'max_count' or 'max_amount'.", where)
    if (max_amount is None) != (currency is None):
        raise _bad("'max_amount' needs its 'currency' (and only it).", (*where, "currency"))
    return Velocity(per, window, max_count, max_amount, currency)


def parse_rule_set(
    rule_set_id: str,
    version: int,
    rules: Sequence[Mapping[str, Any]],
    plugins: Mapping[str, RiskCondition],
) -> RiskRuleSet:
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        raise _bad(f"'{{field}}' must be a list of at most {MAX_RULES} rules.", ("rules",))
    parsed = tuple(parse_rule(r, ("rules", str(i)), plugins) for i, r in enumerate(rules))
    names = [r.name for r in parsed]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _bad(f"'{{field}}': the name '{name}' is used twice.", ("rules", str(i), "name"))
    return RiskRuleSet(rule_set_id, version, parsed)
