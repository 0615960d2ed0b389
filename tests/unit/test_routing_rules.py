"""Routing rules and the static checker as properties: a rule the checker accepts decides the
witness it gives (some payment reaches it); a rule it refuses decides no payment; a split is
deterministic per payment and converges on its weights."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearport.core.errors import InvalidRequest
from clearport.routing.checker import check_rule_set, check_rules
from clearport.routing.domain import decide, parse_rule_set
from clearport.rulesets.domain import Facts
from clearport.vault.cards import detect_brand

BRANDS = ["visa", "mastercard", "amex"]
FUNDINGS = ["credit", "debit", "prepaid"]
COUNTRIES = ["US", "GB", "DE"]
CURRENCIES = ["usd", "eur"]
MERCHANTS = ["mer_a", "mer_b"]
MCCS = ["5999", "4111"]
PREFIXES = ["4", "42", "424242", "5", "51", "37"]


def _values(options: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(options),
        st.lists(st.sampled_from(options), min_size=1, max_size=2, unique=True),
    )


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    when: dict[str, Any] = {}
    for name, options in (
        ("brand", BRANDS),
        ("funding", FUNDINGS),
        ("issuer_country", COUNTRIES),
        ("merchant", MERCHANTS),
        ("mcc", MCCS),
    ):
        if draw(st.integers(0, 3)) == 0:
            when[name] = draw(_values(options))
    bins = draw(st.integers(0, 4))
    if bins == 0:
        when["bin_prefix"] = draw(st.sampled_from(PREFIXES))
    elif bins == 1:
        low = draw(st.integers(30, 59))
        when["bin_range"] = [str(low), str(draw(st.integers(low - 1, 59)))]
    if draw(st.booleans()):
        when["currency"] = draw(st.sampled_from(CURRENCIES))
        if draw(st.booleans()):
            when["amount_gte"] = draw(st.sampled_from([0, 100, 1000]))
        if draw(st.booleans()):
            when["amount_lt"] = draw(st.sampled_from([100, 1000, 5000]))
    elif draw(st.integers(0, 3)) == 0:
        when["currency"] = draw(_values(CURRENCIES))
    return when


rule_sets = st.lists(conditions(), min_size=1, max_size=6).map(
    lambda whens: parse_rule_set(
        "rrs_test",
        1,
        [{"name": f"r{i}", "when": w, "then": {"connectors": ["a"]}} for i, w in enumerate(whens)],
        {"connectors": ["a"]},
    )
)

payments = st.builds(
    Facts,
    payment_id=st.just("pay_x"),
    merchant=st.sampled_from([*MERCHANTS, "mer_other"]),
    mcc=st.sampled_from([*MCCS, "1234"]),
    amount=st.sampled_from([0, 50, 100, 999, 1000, 4999, 5000, 10**6]),
    currency=st.sampled_from([*CURRENCIES, "jpy"]),
    brand=st.sampled_from(BRANDS),
    bin=st.sampled_from(
        [
            "42424242",
            "40000566",
            "51051051",
            "55555555",
            "37144963",
            "30000000",
            "59999999",
            "42000000",
        ]
    ),
    funding=st.sampled_from([*FUNDINGS, None]),
    issuer_country=st.sampled_from([*COUNTRIES, "FR", None]),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets)
def test_an_accepted_rule_decides_its_witness(rule_set: Any) -> None:
    for check in check_rules(rule_set):
        if check.problem is None:
            assert check.witness is not None
            assert decide(rule_set, check.witness).rule == check.rule


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets, st.lists(payments, min_size=1, max_size=30))
def test_a_refused_rule_decides_no_payment(rule_set: Any, sample: list[Facts]) -> None:
    refused = {c.rule for c in check_rules(rule_set) if c.problem is not None}
    for facts in sample:
        # A payment's BIN and brand agree, as the vault's brand detection makes them.
        if detect_brand(facts.bin) != facts.brand:
            continue
        assert decide(rule_set, facts).rule not in refused


def _set(*rules: dict[str, Any]) -> Any:
    return parse_rule_set("rrs_t", 1, list(rules), {"connectors": ["a"]})


def test_shadowing_by_several_earlier_rules_together() -> None:
    """No single earlier rule covers the third; the first two together do."""
    rules = _set(
        {"name": "credit", "when": {"funding": "credit"}, "then": {"connectors": ["a"]}},
        {
            "name": "not-credit",
            "when": {"funding": ["debit", "prepaid"]},
            "then": {"connectors": ["a"]},
        },
        {
            "name": "visa-debit",
            "when": {"brand": "visa", "funding": "debit"},
            "then": {"connectors": ["a"]},
        },
        {"name": "unknown-funding", "when": {"brand": "visa"}, "then": {"connectors": ["a"]}},
    )
    checks = {c.rule: c for c in check_rules(rules)}
    assert checks["visa-debit"].problem is not None
    assert "'not-credit'" in (checks["visa-debit"].problem or "")
    # A Visa card whose BIN is not in the table has no funding: the last rule still decides it.
    witness = checks["unknown-funding"].witness
    assert witness is not None and witness.funding is None


def test_amount_ranges_and_bin_edges() -> None:
    rules = _set(
        {
            "name": "small",
            "when": {"currency": "usd", "amount_lt": 1000},
            "then": {"connectors": ["a"]},
        },
        {
            "name": "rest",
            "when": {"currency": "usd", "amount_gte": 1000},
            "then": {"connectors": ["a"]},
        },
        {"name": "all-usd", "when": {"currency": "usd"}, "then": {"connectors": ["a"]}},
    )
    assert [c.problem is None for c in check_rules(rules)] == [True, True, False]
    edge = _set(
        {
            "name": "range",
            "when": {"bin_range": ["400000", "424242"]},
            "then": {"connectors": ["a"]},
        },
        {"name": "after", "when": {"bin_prefix": "4242"}, "then": {"connectors": ["a"]}},
    )
    after = check_rules(edge)[1]
    assert after.witness is not None and after.witness.bin == "42424300"


def test_the_checker_answers_a_400_naming_the_rule() -> None:
    rules = _set(
        {"name": "any", "when": {}, "then": {"connectors": ["a"]}},
        {"name": "late", "when": {"brand": "visa"}, "then": {"connectors": ["a"]}},
    )
    with pytest.raises(InvalidRequest) as refused:
        check_rule_set(rules, {"a"})
    assert refused.value.field == ("rules", "1")
    assert "'late'" in refused.value.message
    with pytest.raises(InvalidRequest) as unknown:
        check_rule_set(_set({"name": "x", "when": {}, "then": {"connectors": ["b"]}}), {"a"})
    assert unknown.value.field == ("rules", "0", "then")


def test_a_split_is_deterministic_per_payment_and_converges_on_its_weights() -> None:
    rules = parse_rule_set(
        "rrs_t",
        1,
        [
            {
                "name": "split",
                "when": {},
                "then": {
                    "split": [{"connector": "a", "weight": 70}, {"connector": "b", "weight": 30}]
                },
            }
        ],
        {"connectors": ["a"]},
    )
    facts = Facts("pay_1", "mer_a", "5999", 100, "usd", "visa", "42424242", None, None)
    first = decide(rules, facts)
    assert decide(rules, facts) == first  # a retry of the same payment routes the same way
    assert set(first.candidates) == {"a", "b"} and len(first.candidates) == 2
    chosen = Counter(
        decide(
            rules, Facts(f"pay_{i}", "mer_a", "5999", 100, "usd", "visa", "42424242", None, None)
        ).candidates[0]
        for i in range(20_000)
    )
    assert abs(chosen["a"] / 20_000 - 0.70) < 0.02
