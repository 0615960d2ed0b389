"""The replay's projection: the level an approval rate comes from, risk candidates blocking and
releasing, velocity counted over the replay, fees weighted by the rate; deterministic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from clearport.replay.domain import MIN_SAMPLES, Observed, PastPayment, Replay, amount_band
from clearport.risk.domain import parse_rule_set as parse_risk
from clearport.routing.domain import parse_rule_set as parse_routing
from clearport.rulesets.domain import Facts

AT = datetime(2026, 12, 1, tzinfo=UTC)


def facts(i: int, amount: int = 1_000, bin_: str = "42424242", brand: str = "visa") -> Facts:
    return Facts(f"pay_{i}", "mer_a", "5999", amount, "usd", brand, bin_, "credit", "US", "fp1")


def test_the_rate_comes_from_the_narrowest_level_with_enough_attempts() -> None:
    observed = Observed(
        by_bin={("a", "42424242"): (MIN_SAMPLES, MIN_SAMPLES), ("a", "40000566"): (1, 2)},
        by_band={("a", "visa", "usd", 4): (30, 40)},
        by_brand={("a", "visa"): (50, 100)},
        by_connector={"a": (60, 100)},
        overall=(70, 100),
    )
    assert observed.rate("a", facts(1)) == 1  # its BIN: 20 of 20
    assert observed.rate("a", facts(2, bin_="40000566")) == Fraction(3, 4)  # too few: the band
    assert observed.rate("a", facts(3, amount=100_000, bin_="40000566")) == Fraction(1, 2)
    assert observed.rate("a", facts(4, brand="mastercard", bin_="55555555")) == Fraction(3, 5)
    assert observed.rate("never-tried", facts(5)) == Fraction(7, 10)
    assert amount_band(999) == 3 and amount_band(1_000) == 4


def test_risk_candidates_block_release_and_count_velocity_over_the_replay() -> None:
    risk = parse_risk(
        "rks_c",
        0,
        [
            {
                "name": "two-per-hour",
                "mode": "enforce",
                "kind": "velocity",
                "per": "card_fingerprint",
                "window_s": 3600,
                "max_count": 2,
            }
        ],
        {},
    )
    routing = parse_routing("rrs_c", 0, [], {"connectors": ["b"]})
    observed = Observed({}, {}, {}, {"a": (9, 10), "b": (1, 2)}, (10, 12))

    def price(f: Facts) -> dict[str, Fraction]:
        return {"usd": Fraction(f.amount, 100)}

    def replay() -> dict[str, object]:
        r = Replay(observed, routing, risk, price)
        history = [
            PastPayment(facts(1), AT, "a", False),
            PastPayment(facts(2), AT + timedelta(minutes=1), "", True),  # blocked then
            PastPayment(facts(3), AT + timedelta(minutes=2), "a", False),  # third in the hour
            PastPayment(facts(4), AT + timedelta(hours=2), "a", False),  # the window has moved
        ]
        for past in history:
            r.add(past)
        return r.report()

    report = replay()
    assert report == replay()  # deterministic
    assert report["newly_blocked"] == {"count": 1, "payments": ["pay_3"]}
    assert report["released"] == {"count": 1, "payments": ["pay_2"]}
    (b,) = report["connectors"]  # type: ignore[misc]
    assert (b["connector"], b["count"], b["projected_approval_rate_bps"]) == ("b", 3, 5_000)
    # Fees: each payment's 10.00 weighted by b's rate of 1/2, three of them.
    assert b["projected_fees"] == [{"currency": "usd", "amount": 15}]
