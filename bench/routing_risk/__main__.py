"""The cost of routing and risk evaluation per payment with 100 rules of each kind, in process.

    .venv/bin/python -m bench.routing_risk
    .venv/bin/python -m bench.routing_risk --payments 20000

What the authorization path adds per payment once the active sets are in the process's cache
(`RoutePlan.decide` and `risk.domain.screen`; velocity counts given, as the one read of the
payments table that fetches them is a database round trip measured by bench/authorize): 100
routing rules (merchant, brand, BIN, funding, country, amount conditions; split and ordered
outcomes) and 100 risk rules (block lists of 50 values, amount limits, velocity), for payments
that match early, late and not at all (the worst case: every rule tried, then the default).
Baseline in the same run: the same payments with no active sets (the default order, no risk).
Also printed: how long the static checker takes to accept the 100-rule set (once, when saved).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from clearport.connectors.ports import Candidates
from clearport.risk.domain import RiskRuleSet, VelocityCount, parse_rule_set, screen
from clearport.routing.checker import check_rule_set
from clearport.routing.domain import RuleSet
from clearport.routing.domain import parse_rule_set as parse_routing
from clearport.routing.service import RoutePlan
from clearport.rulesets.domain import Facts

BRANDS = ["visa", "mastercard", "amex", "discover"]
CONNECTORS = ["acq-a", "acq-b", "acq-c"]


def routing_rules(count: int) -> RuleSet:
    rules: list[dict[str, Any]] = []
    for i in range(count):
        when: dict[str, Any] = {"merchant": f"mer_m{i}"}
        match i % 4:
            case 0:
                when["brand"] = BRANDS[i % len(BRANDS)]
            case 1:
                when |= {"funding": ["debit", "prepaid"], "issuer_country": ["US", "GB"]}
            case 2:
                when |= {"currency": "usd", "amount_gte": 10_000, "amount_lt": 1_000_000}
            case _:
                when["bin_range"] = ["400000", "499999"]
        then: dict[str, Any] = (
            {"split": [{"connector": c, "weight": 1 + j} for j, c in enumerate(CONNECTORS)]}
            if i % 2
            else {"connectors": CONNECTORS}
        )
        rules.append({"name": f"r{i}", "when": when, "then": then})
    return parse_routing("rrs_bench", 1, rules, {"connectors": ["acq-a"]})


def risk_rules(count: int) -> RiskRuleSet:
    rules: list[dict[str, Any]] = []
    for i in range(count):
        mode = "dry_run" if i % 2 else "enforce"
        match i % 3:
            case 0:
                values = [f"5{i:02d}{j:03d}" for j in range(50)]
                rules.append(
                    {
                        "name": f"b{i}",
                        "mode": mode,
                        "kind": "block_list",
                        "field": "bin",
                        "values": values,
                    }
                )
            case 1:
                rules.append(
                    {
                        "name": f"a{i}",
                        "mode": mode,
                        "kind": "amount_limit",
                        "currency": "eur",
                        "max_amount": 10**12 + i,
                    }
                )
            case _:
                rules.append(
                    {
                        "name": f"v{i}",
                        "mode": mode,
                        "kind": "velocity",
                        "per": "card_fingerprint",
                        "window_s": 3600 + i,
                        "max_count": 10**6,
                    }
                )
    return parse_rule_set("rks_bench", 1, rules, {})


def facts(i: int, merchant: str) -> Facts:
    return Facts(
        payment_id=f"pay_{i:026d}",
        merchant=merchant,
        mcc="5999",
        amount=2_599 + i % 1000,
        currency="usd",
        brand="visa",
        bin="42424242",
        funding="credit",
        issuer_country="US",
        fingerprint=f"fp{i % 97}",
    )


def per_payment_us(work: Callable[[Facts], object], payments: list[Facts], rounds: int) -> float:
    """The median over `rounds` of the mean time per payment, in microseconds."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for f in payments:
            work(f)
        samples.append((time.perf_counter() - start) / len(payments) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rules", type=int, default=100)
    args = parser.parse_args()

    routing = routing_rules(args.rules)
    risk = risk_rules(args.rules)
    started = time.perf_counter()
    check_rule_set(routing, set(CONNECTORS))
    checker_ms = (time.perf_counter() - started) * 1000
    default = Candidates(("acq-a",), "default", "configured connectors, in order")
    usable: Callable[[tuple[str, ...]], tuple[str, ...]] = lambda names: names  # noqa: E731
    with_rules = RoutePlan(routing, default, usable)
    without = RoutePlan(None, default, usable)
    counts = [VelocityCount(3, 0) for _ in risk.velocity]

    def full(f: Facts) -> object:
        decision = screen(risk, f, counts)
        return None if decision.blocked else with_rules.decide(f)

    def baseline(f: Facts) -> object:
        return without.decide(f)

    cases = {
        "match early (rule 0)": [facts(i, "mer_m0") for i in range(args.payments)],
        f"match late (rule {args.rules - 1})": [
            facts(i, f"mer_m{args.rules - 1}") for i in range(args.payments)
        ],
        "no match (all rules, then default)": [
            facts(i, "mer_nobody") for i in range(args.payments)
        ],
    }
    print(
        f"routing + risk evaluation per payment, {args.rules} rules of each kind "
        f"({args.payments} payments x {args.rounds} rounds, median):"
    )
    for name, payments in cases.items():
        figure = per_payment_us(full, payments, args.rounds)
        base = per_payment_us(baseline, payments, args.rounds)
        print(f"  {name:<38} {figure:8.1f} µs   baseline (no rule sets) {base:6.2f} µs")
    print(
        f"static checker, {args.rules}-rule routing set accepted: {checker_ms:.0f} ms "
        "(once, on save)"
    )


if __name__ == "__main__":
    main()
