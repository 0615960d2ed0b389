"""The static checker: before a routing rule set is saved, every rule must be able to decide
some payment (decision 0512).

A rule's conditions describe a box in the space of payments: a set of values per categorical
fact, an interval of BINs and one of amounts. A rule is refused when
- its box is empty (self-contradicting: an amount range that is empty, a brand that has no BIN
  in its BIN range, an empty list of values);
- its box minus the boxes of the rules before it is empty (shadowed: every payment it matches
  is decided by an earlier rule), computed exactly by box subtraction;
- it names a connector that is not registered.

A box that is left also gives a witness: a payment the rule decides (the property tests use it).
Brands and BINs are not independent (a Visa card's BIN starts with 4): a box only counts as
non-empty if some BIN in its interval belongs to one of its brands.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, replace

from clearport.core.errors import InvalidRequest
from clearport.routing.domain import (
    CATEGORICAL,
    FUNDINGS,
    MAX_AMOUNT,
    MAX_BIN,
    Condition,
    Rule,
    RuleSet,
)
from clearport.rulesets.domain import BIN_DIGITS, Facts
from clearport.vault.cards import BRANDS, brand_boundaries, detect_brand

# A bound on the checker's work (box subtractions over the whole set): a set past it is refused
# as too complex to check rather than accepted unproven. 200 rules of realistic shape stay far
# below it (the benchmark's 100 rules: a few hundred).
MAX_WORK = 50_000
_BOUNDARIES = brand_boundaries(BIN_DIGITS)
# Finite universes ('' is "not known": a BIN missing from the BIN table).
_UNIVERSE: Mapping[str, frozenset[str]] = {
    "brand": frozenset(BRANDS),
    "funding": frozenset({*FUNDINGS, ""}),
}


@dataclass(frozen=True, slots=True)
class Values:
    """A set of values: `items`, or (negated) everything but `items`."""

    items: frozenset[str]
    negated: bool = False

    @staticmethod
    def make(name: str, items: frozenset[str], negated: bool) -> Values:
        universe = _UNIVERSE.get(name)
        if universe is not None and negated:
            return Values(universe - items)
        return Values(items, negated)

    def empty(self) -> bool:
        return not self.negated and not self.items

    def meet(self, name: str, other: Values) -> Values:
        match (self.negated, other.negated):
            case (False, False):
                return Values(self.items & other.items)
            case (False, True):
                return Values(self.items - other.items)
            case (True, False):
                return Values(other.items - self.items)
            case _:
                return Values.make(name, self.items | other.items, True)

    def minus(self, name: str, other: Values) -> Values:
        return self.meet(name, Values.make(name, other.items, not other.negated))


Interval = tuple[int, int]  # inclusive


@dataclass(frozen=True, slots=True)
class Box:
    values: tuple[Values, ...]  # in CATEGORICAL order
    bins: Interval
    amounts: Interval

    def empty(self) -> bool:
        return (
            any(v.empty() for v in self.values)
            or self.bins[0] > self.bins[1]
            or self.amounts[0] > self.amounts[1]
        )


def box_of(when: Condition) -> Box:
    values = tuple(
        Values.make(name, when.values[name], False)
        if name in when.values
        else Values.make(name, frozenset(), True)
        for name in CATEGORICAL
    )
    bins = (
        (0, MAX_BIN)
        if when.bin_low is None or when.bin_high is None
        else (when.bin_low, when.bin_high)
    )
    amounts = (
        0 if when.amount_gte is None else when.amount_gte,
        MAX_AMOUNT if when.amount_lt is None else when.amount_lt - 1,
    )
    return Box(values, bins, amounts)


def _interval_minus(a: Interval, b: Interval) -> list[Interval]:
    pieces = []
    if a[0] < b[0]:
        pieces.append((a[0], min(a[1], b[0] - 1)))
    if a[1] > b[1]:
        pieces.append((max(a[0], b[1] + 1), a[1]))
    return [p for p in pieces if p[0] <= p[1]]


def _interval_meet(a: Interval, b: Interval) -> Interval:
    return (max(a[0], b[0]), min(a[1], b[1]))


def intersects(a: Box, b: Box) -> bool:
    """Whether some point is in both (dimension by dimension, stopping at the first apart)."""
    if a.bins[0] > b.bins[1] or b.bins[0] > a.bins[1]:
        return False
    if a.amounts[0] > b.amounts[1] or b.amounts[0] > a.amounts[1]:
        return False
    return all(
        not x.meet(n, y).empty() for n, x, y in zip(CATEGORICAL, a.values, b.values, strict=True)
    )


def subtract(a: Box, b: Box) -> list[Box]:
    """`a` minus `b` as disjoint boxes."""
    if not intersects(a, b):
        return [a]
    pieces: list[Box] = []
    current = a
    for i, name in enumerate(CATEGORICAL):
        outside = current.values[i].minus(name, b.values[i])
        if not outside.empty():
            pieces.append(replace(current, values=_with(current.values, i, outside)))
        current = replace(
            current, values=_with(current.values, i, current.values[i].meet(name, b.values[i]))
        )
    for part in _interval_minus(current.bins, b.bins):
        pieces.append(replace(current, bins=part))
    current = replace(current, bins=_interval_meet(current.bins, b.bins))
    for part in _interval_minus(current.amounts, b.amounts):
        pieces.append(replace(current, amounts=part))
    return pieces


def _with(values: tuple[Values, ...], i: int, v: Values) -> tuple[Values, ...]:
    return (*values[:i], v, *values[i + 1 :])


def _brand_bin(box: Box) -> tuple[str, int] | None:
    """A (brand, 8-digit BIN) of the box where the BIN is of that brand, or None."""
    brands = box.values[CATEGORICAL.index("brand")]
    low, high = box.bins
    starts = [low, *(p for p in _BOUNDARIES if low < p <= high)]
    for start in starts:
        brand = detect_brand(str(start).zfill(BIN_DIGITS))
        if brand is not None and brand in brands.items:
            return brand, start
    return None


def realizable(box: Box) -> bool:
    return not box.empty() and _brand_bin(box) is not None


def _some(items: Collection[str], candidates: Iterator[str]) -> str:
    return next(c for c in candidates if c not in items)


def _letters(n: int, upper: bool) -> Iterator[str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if upper else "abcdefghijklmnopqrstuvwxyz"
    return ("".join(p) for p in itertools.product(alphabet, repeat=n))


def _synthetic(name: str) -> Iterator[str]:
    """Values to pick a witness's fact from, for the facts with no finite universe."""
    match name:
        case "issuer_country":
            return itertools.chain([""], _letters(2, True))
        case "currency":
            return _letters(3, False)
        case "merchant":
            return (f"mer_w{i}" for i in itertools.count())
        case _:
            return (f"{i:04d}" for i in range(10_000))


def witness(box: Box, payment_id: str = "pay_witness") -> Facts | None:
    """A payment inside the box, or None if the box holds none."""
    if box.empty():
        return None
    found = _brand_bin(box)
    if found is None:
        return None
    brand, bin_key = found
    chosen: dict[str, str] = {}
    for name, values in zip(CATEGORICAL, box.values, strict=True):
        if name == "brand":
            chosen[name] = brand
        elif not values.negated:
            chosen[name] = min(values.items)
        else:
            chosen[name] = _some(values.items, _synthetic(name))
    return Facts(
        payment_id=payment_id,
        merchant=chosen["merchant"],
        mcc=chosen["mcc"],
        amount=box.amounts[0],
        currency=chosen["currency"],
        brand=brand,
        bin=str(bin_key).zfill(BIN_DIGITS),
        funding=chosen["funding"] or None,
        issuer_country=chosen["issuer_country"] or None,
    )


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """What is left of a rule after the rules before it: a witness, or why there is none."""

    rule: str
    witness: Facts | None
    problem: str | None


def check_rules(rule_set: RuleSet) -> list[RuleCheck]:
    """Each rule's witness, or its problem (contradiction or shadowing)."""
    checks: list[RuleCheck] = []
    earlier: list[tuple[Rule, Box]] = []
    work = 0
    for rule in rule_set.rules:
        box = box_of(rule.when)
        if not realizable(box):
            checks.append(RuleCheck(rule.name, None, _contradiction(rule, box)))
            earlier.append((rule, box))
            continue
        left = [box]
        overlapping: list[str] = []
        for other, other_box in earlier:
            if not intersects(box, other_box):
                continue  # the common case: rules on different payments
            overlapping.append(other.name)
            cut: list[Box] = []
            for part in left:
                if intersects(part, other_box):
                    work += 1
                    cut.extend(p for p in subtract(part, other_box) if realizable(p))
                else:
                    cut.append(part)
            left = cut
            if not left or work > MAX_WORK:
                break
        if work > MAX_WORK:
            problem = "the set is too complex to check: merge or narrow the rules it overlaps"
            checks.append(RuleCheck(rule.name, None, problem))
            return checks  # the rules after it are not checked
        found = next((w for w in (witness(p) for p in left) if w), None)
        if found is None:
            names = ", ".join(f"'{n}'" for n in overlapping)
            problem = f"it can never match: every payment it matches is decided first by {names}"
            checks.append(RuleCheck(rule.name, None, problem))
        else:
            checks.append(RuleCheck(rule.name, found, None))
        earlier.append((rule, box))
    return checks


def _contradiction(rule: Rule, box: Box) -> str:
    if box.amounts[0] > box.amounts[1]:
        return "its conditions contradict each other: amount_gte is not below amount_lt"
    if box.bins[0] > box.bins[1]:
        return "its conditions contradict each other: the BIN range is empty"
    if any(v.empty() for v in box.values):
        return "its conditions contradict each other: a condition allows no value"
    return "its conditions contradict each other: no card of its brand has a BIN it allows"


def check_rule_set(rule_set: RuleSet, known_connectors: Collection[str]) -> None:
    """Refuse the set (400 naming the rule and why) if a rule can never match or a connector is
    not registered."""
    for i, rule in enumerate(rule_set.rules):
        unknown = [c for c in rule.named_connectors if c not in known_connectors]
        if unknown:
            raise InvalidRequest(
                f"Rule '{rule.name}' names the unknown connector '{unknown[0]}'.",
                code="rule_invalid",
                field=("rules", str(i), "then"),
            )
    unknown_default = [c for c in rule_set.default if c not in known_connectors]
    if unknown_default:
        raise InvalidRequest(
            f"The default names the unknown connector '{unknown_default[0]}'.",
            code="rule_invalid",
            field=("default", "connectors"),
        )
    for i, check in enumerate(check_rules(rule_set)):
        if check.problem is not None:
            raise InvalidRequest(
                f"Rule '{check.rule}' is refused: {check.problem}.",
                code="rule_unreachable",
                field=("rules", str(i)),
            )
