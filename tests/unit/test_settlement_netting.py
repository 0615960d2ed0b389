"""Netting a partition without I/O: `net_settlement` and `net_partition` against an independent
model of the ledger (balances moved leg by leg) and of the formulas."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearport.core.errors import InvariantViolation
from clearport.settlement.domain import (
    AVAILABLE,
    PENDING,
    PLATFORM,
    RESERVE,
    CarriedBalance,
    ItemAggregates,
    Leg,
    MerchantTerms,
    OpenSettlement,
    Repayment,
    ReserveHoldDue,
    SettlementInput,
    SettlementNetting,
)
from clearport.settlement.fees import FeeTotals
from clearport.settlement.netting import net_partition
from clearport.settlement.netting import net_settlement as net_settlement_on

DAY = date(2026, 11, 2)
MERCHANT = "mer_x"
STL = OpenSettlement("stl_x", MERCHANT, "usd")


def every_day(currency: str, day: date) -> date:
    """A calendar whose every day is a banking day (settlement/calendar.py has the real ones)."""
    return day


def net_settlement(business_date: date, given_: SettlementInput) -> SettlementNetting:
    return net_settlement_on(business_date, given_, created_on=DAY, banking=every_day)


def balances(legs: tuple[Leg, ...]) -> Counter[tuple[str, str]]:
    """Every account's change (credits - debits), posting the legs one by one."""
    moved: Counter[tuple[str, str]] = Counter()
    for leg in legs:
        assert leg.amount_minor > 0
        assert (leg.debit_owner, leg.debit_kind) != (leg.credit_owner, leg.credit_kind)
        moved[(leg.debit_owner, leg.debit_kind)] -= leg.amount_minor
        moved[(leg.credit_owner, leg.credit_kind)] += leg.amount_minor
    return moved


@st.composite
def fee_totals(draw: st.DrawFn, gross: int) -> FeeTotals:
    """Per-component exact sums and the sums of their per-item roundings (each within half a
    unit per item of the exact sum, as pricing item by item makes them)."""
    items = draw(st.integers(0, 50))
    parts = []
    for _ in range(3):
        exact = Fraction(draw(st.integers(0, max(gross, 0) // 10 + 1_000)), draw(st.integers(1, 8)))
        drift = draw(st.integers(-items // 2, items // 2)) if items else 0
        parts.append((exact, max(round(exact) + drift, 0)))
    return FeeTotals(
        interchange_exact=parts[0][0],
        scheme_fee_exact=parts[1][0],
        markup_exact=parts[2][0],
        interchange_charged=parts[0][1],
        scheme_fee_charged=parts[1][1],
        markup_charged=parts[2][1],
    )


@st.composite
def settlement_inputs(draw: st.DrawFn) -> SettlementInput:
    gross = draw(st.integers(0, 10**11))
    refunds = draw(st.integers(0, 10**11))
    disputes = draw(st.integers(-(10**9), 10**10))
    adjustments = draw(st.integers(-(10**9), 10**9))
    dispute_fees = draw(st.integers(-(10**5), 10**6))
    fees = draw(fee_totals(gross))
    count = draw(st.integers(0, 10**6))
    items = ItemAggregates(
        STL.id, count, gross, refunds, fees,
        gross - refunds - disputes + adjustments - fees.charged - dispute_fees,
        draw(st.integers(0, count)), disputes, adjustments, dispute_fees,
    )  # fmt: skip
    terms = MerchantTerms(
        MERCHANT, draw(st.integers(0, 10_000)), draw(st.integers(0, 30)), draw(st.integers(0, 90))
    )
    releases = tuple(
        ReserveHoldDue(f"stl_h{i}", MERCHANT, "usd", amount)
        for i, amount in enumerate(draw(st.lists(st.integers(1, 10**9), max_size=4)))
    )
    return SettlementInput(
        STL, items, terms, draw(st.integers(-(10**10), 0)), releases, draw(st.integers(0, 10**9))
    )


@settings(max_examples=150)
@given(settlement_inputs())
def test_net_settlement_moves_money_as_the_formulas_say(given_: SettlementInput) -> None:
    items, terms = given_.items, given_.terms
    netted = net_settlement(DAY, given_)
    t = netted.totals
    held = round(Fraction(items.gross_minor * terms.reserve_percent_bps, 10_000))
    released = sum(h.amount_minor for h in given_.releases_due)
    # What the items put into pending when they happened (a dispute's fee with it).
    in_pending = (
        items.gross_minor
        - items.refunds_minor
        - items.disputes_minor
        + items.adjustments_minor
        - items.dispute_fees_minor
    )
    repaid = given_.repaid_minor
    total = in_pending - items.fees.charged - held + released + given_.carried_in_minor + repaid
    assert (t.reserve_held_minor, t.reserve_released_minor) == (held, released)
    assert t.net_minor == total - given_.carried_in_minor - repaid
    assert (t.payout_minor, t.carried_out_minor) == (max(total, 0), min(total, 0))
    # payout + carried forward = net + carried in + repaid, and only one of them is not zero.
    assert t.payout_minor + t.carried_out_minor == t.net_minor + t.carried_in_minor + repaid
    assert t.payout_minor * t.carried_out_minor == 0
    # The legs net to zero; the merchant's accounts move exactly as settlement says.
    moved = balances(netted.legs)
    assert sum(moved.values()) == 0
    assert moved[(MERCHANT, AVAILABLE)] == t.payout_minor - repaid
    assert moved[(MERCHANT, RESERVE)] == held - released
    assert moved[(MERCHANT, PENDING)] == -in_pending - t.carried_in_minor + t.carried_out_minor
    # The captures' fees go to the platform's fee accounts now, to the unit; the dispute fees
    # went when the disputes came, and the settlement shows them.
    platform = sum(v for (owner, _), v in moved.items() if owner == PLATFORM)
    assert platform == items.fees.charged
    assert t.fees_minor == items.fees.charged + items.dispute_fees_minor
    assert t.rounding_minor == items.fees.rounding_residual
    # Available (holding the repayment) never dips below zero while the legs are posted.
    available = repaid
    for leg in netted.legs:
        available += balances((leg,))[(MERCHANT, AVAILABLE)]
        assert available >= 0
    # What is paid, held and released.
    if t.payout_minor > 0:
        assert netted.payout is not None
        assert netted.payout.amount_minor == t.payout_minor
        assert netted.payout.arrival_date == DAY + timedelta(days=terms.payout_delay_days)
    else:
        assert netted.payout is None
    if held > 0:
        assert netted.hold is not None and netted.hold.amount_minor == held
        assert netted.hold.release_on == DAY + timedelta(days=terms.reserve_hold_days)
    else:
        assert netted.hold is None
    assert [(r.held_by, r.released_by) for r in netted.releases] == [
        (h.held_by, STL.id) for h in given_.releases_due
    ]
    assert len({leg.key for leg in netted.legs}) == len(netted.legs)


def _input(**changes: object) -> SettlementInput:
    fees = FeeTotals(markup_exact=Fraction(61, 2), markup_charged=30)
    base = SettlementInput(
        STL,
        ItemAggregates(STL.id, 2, 1_000, 200, fees, 770, 0),
        MerchantTerms(MERCHANT, 0, 0, 0),
        0,
        (),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_net_settlement_refuses_inputs_that_do_not_belong_or_add_up() -> None:
    net_settlement(DAY, _input())
    other = ItemAggregates("stl_y", 2, 1_000, 200, FeeTotals(), 800, 0)
    with pytest.raises(InvariantViolation, match="aggregates"):
        net_settlement(DAY, _input(items=other))
    with pytest.raises(InvariantViolation, match="terms"):
        net_settlement(DAY, _input(terms=MerchantTerms("mer_y", 0, 0, 0)))
    with pytest.raises(InvariantViolation, match="releases"):
        net_settlement(DAY, _input(releases_due=(ReserveHoldDue("stl_h", MERCHANT, "eur", 5),)))
    lost = ItemAggregates(STL.id, 2, 1_000, 200, FeeTotals(markup_charged=30), 800, 0)
    with pytest.raises(InvariantViolation, match="gross = net"):
        net_settlement(DAY, _input(items=lost))
    with pytest.raises(InvariantViolation, match="carried forward"):
        net_settlement(DAY, _input(carried_in_minor=5))


def test_net_partition_joins_what_the_store_read() -> None:
    a = OpenSettlement("stl_a", "mer_a", "usd")
    b = OpenSettlement("stl_b", "mer_a", "eur")  # only a release due: no items
    c = OpenSettlement("stl_c", "mer_c", "usd")
    netted = net_partition(
        DAY,
        [a, b, c],
        created_on=DAY,
        banking=every_day,
        aggregates=[
            ItemAggregates("stl_c", 1, 500, 0, FeeTotals(markup_charged=45), 455, 0),
            ItemAggregates("stl_a", 1, 1_000, 0, FeeTotals(markup_charged=59), 941, 0),
        ],
        terms=[MerchantTerms("mer_c", 1_000, 3, 2), MerchantTerms("mer_a", 0, 0, 1)],
        carried_in=[CarriedBalance("mer_a", "usd", -41), CarriedBalance("mer_c", "eur", -7)],
        releases_due=[
            ReserveHoldDue("stl_old1", "mer_a", "eur", 300),
            ReserveHoldDue("stl_old2", "mer_a", "eur", 20),
        ],
    )
    assert [n.settlement for n in netted] == [a, b, c]
    by_id: dict[str, SettlementNetting] = {n.settlement.id: n for n in netted}
    assert by_id["stl_a"].totals.payout_minor == 1_000 - 59 - 41
    assert by_id["stl_a"].totals.carried_in_minor == -41
    assert by_id["stl_b"].totals.count == 0 and by_id["stl_b"].totals.payout_minor == 320
    assert [(r.held_by, r.released_by) for r in by_id["stl_b"].releases] == [
        ("stl_old1", "stl_b"),
        ("stl_old2", "stl_b"),
    ]
    c_netted = by_id["stl_c"]
    assert c_netted.totals.carried_in_minor == 0  # mer_c's carry is in eur, not usd
    assert c_netted.hold is not None and c_netted.hold.amount_minor == 50
    assert c_netted.payout is not None
    assert c_netted.payout.amount_minor == 500 - 45 - 50
    assert c_netted.payout.arrival_date == DAY + timedelta(days=2)
    assert not by_id["stl_a"].releases and by_id["stl_a"].hold is None


def test_net_partition_refuses_what_it_cannot_place() -> None:
    a = OpenSettlement("stl_a", "mer_a", "usd")
    terms = [MerchantTerms("mer_a", 0, 0, 0)]

    def partition(
        settlements: list[OpenSettlement] = [a],  # noqa: B006 (never mutated)
        terms: list[MerchantTerms] = terms,
        aggregates: tuple[ItemAggregates, ...] = (),
        releases_due: tuple[ReserveHoldDue, ...] = (),
    ) -> list[SettlementNetting]:
        return net_partition(
            DAY, settlements, aggregates=aggregates, terms=terms, carried_in=(),
            releases_due=releases_due, created_on=DAY, banking=every_day,
        )  # fmt: skip

    assert len(partition()) == 1
    with pytest.raises(InvariantViolation, match="terms of mer_a"):
        partition(terms=[])
    with pytest.raises(InvariantViolation, match="priced items"):
        partition(aggregates=(ItemAggregates.empty("stl_z"),))
    with pytest.raises(InvariantViolation, match="release due"):
        partition(releases_due=(ReserveHoldDue("stl_h", "mer_a", "eur", 1),))
    with pytest.raises(InvariantViolation, match="one settlement per"):
        partition([a, OpenSettlement("stl_b", "mer_a", "usd")])


@settings(max_examples=50)
@given(st.lists(settlement_inputs(), min_size=1, max_size=6))
def test_net_partition_is_net_settlement_of_each(inputs: list[SettlementInput]) -> None:
    # One merchant x currency per settlement, each with its own terms, carry and releases.
    placed = [
        replace(
            given_,
            settlement=OpenSettlement(f"stl_{i}", f"mer_{i}", "usd"),
            items=replace(given_.items, settlement_id=f"stl_{i}"),
            terms=replace(given_.terms, merchant_id=f"mer_{i}"),
            releases_due=tuple(replace(h, merchant_id=f"mer_{i}") for h in given_.releases_due),
        )
        for i, given_ in enumerate(inputs)
    ]
    netted = net_partition(
        DAY,
        [p.settlement for p in placed],
        aggregates=[p.items for p in placed],
        terms=[p.terms for p in placed],
        carried_in=[
            CarriedBalance(p.settlement.merchant_id, "usd", p.carried_in_minor) for p in placed
        ],
        releases_due=[h for p in placed for h in p.releases_due],
        repayments=[
            Repayment(p.settlement.merchant_id, "usd", p.repaid_minor, ())
            for p in placed
            if p.repaid_minor
        ],
        created_on=DAY,
        banking=every_day,
    )
    assert netted == [net_settlement(DAY, p) for p in placed]
    assert sum(balances(tuple(leg for n in netted for leg in n.legs)).values()) == 0
