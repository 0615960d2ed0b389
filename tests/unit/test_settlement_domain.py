"""Settlement arithmetic without I/O: pricing, rounding residuals, reserves, netting, legs."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearport.core.errors import InvariantViolation
from clearport.core.money import CURRENCY_EXPONENTS
from clearport.settlement.calendar import HolidayCalendar
from clearport.settlement.domain import AVAILABLE, PENDING, PLATFORM, RESERVE, ROUNDING
from clearport.settlement.fees import (
    COUNTRY_REGIONS,
    DEFAULT_REGION,
    EEA_COUNTRIES,
    FLAG_INTERCHANGE_FALLBACK,
    FLAG_SCHEME_FEE_FALLBACK,
    REGIONS,
    BlendedPricing,
    FeeTotals,
    InterchangePlusPricing,
    Rate,
    parse_pricing,
    price_item,
    region_for_country,
    round_half_even,
)
from clearport.settlement.interchange_tables import table_for
from clearport.settlement.netting import (
    ItemTotals,
    Netting,
    arrival_date,
    check_settlement,
    net_effect,
    reserve_hold_minor,
    settlement_legs,
)
from clearport.vault.cards import BRANDS as CARD_BRANDS

TABLE = table_for(date(2026, 6, 1))
BRANDS = ["visa", "mastercard", "amex", "discover", "maestro", "jcb"]
CARD_TYPES = [None, "consumer_debit", "consumer_credit", "consumer_prepaid", "commercial"]

amounts = st.integers(min_value=1, max_value=10**9)
CURRENCIES = ["usd", "eur", "jpy", "kwd"]
fixed_amounts = st.dictionaries(st.sampled_from(CURRENCIES), st.integers(0, 100), max_size=3)
blended = st.builds(
    lambda bps, fixed, over: BlendedPricing(Rate(Fraction(bps), fixed), over),
    st.integers(0, 1_000),
    fixed_amounts,
    st.dictionaries(
        st.sampled_from(BRANDS),
        st.builds(Rate, st.integers(0, 1_000).map(Fraction), fixed_amounts),
        max_size=2,
    ),
)
icpp = st.builds(
    lambda bps, fixed: InterchangePlusPricing(Rate(Fraction(bps, 10), fixed)),
    st.integers(0, 1_000),
    fixed_amounts,
)
item = st.tuples(
    st.sampled_from(["capture", "capture", "capture", "refund"]),
    amounts,
    st.sampled_from(BRANDS),
    st.sampled_from(CARD_TYPES),
    st.sampled_from(["eea", "us", "uk", "intl"]),
    st.sampled_from(CURRENCIES),
)


def test_half_even_rounding() -> None:
    assert [round_half_even(Fraction(n, 2)) for n in (1, 3, 5, -1, -3)] == [0, 2, 2, 0, -2]
    assert round_half_even(Fraction(251, 100)) == 3


def test_eu_caps_are_real_and_amex_falls_back_flagged() -> None:
    pricing = parse_pricing(
        {"model": "interchange_plus", "markup_bps": 0, "markup_fixed_minor": {}}
    )
    debit = price_item(
        pricing, TABLE, kind="capture", amount_minor=10_000, currency="eur", brand="visa",
        card_type="consumer_debit", region="eea",
    )  # fmt: skip
    credit = price_item(
        pricing, TABLE, kind="capture", amount_minor=10_000, currency="eur", brand="mastercard",
        card_type="consumer_credit", region="eea",
    )  # fmt: skip
    assert (debit.interchange_minor, credit.interchange_minor) == (20, 30)
    amex = price_item(
        pricing, TABLE, kind="capture", amount_minor=10_000, currency="usd", brand="amex",
        card_type=None, region="us",
    )  # fmt: skip
    assert FLAG_INTERCHANGE_FALLBACK in amex.flags
    assert amex.interchange_minor > 0  # never silently zero
    # Unknown card type: the most expensive row of the brand and region, flagged.
    unknown = price_item(
        pricing, TABLE, kind="capture", amount_minor=10_000, currency="eur", brand="visa",
        card_type=None, region="eea",
    )  # fmt: skip
    assert unknown.interchange_minor == 145 and FLAG_INTERCHANGE_FALLBACK in unknown.flags


def test_fixed_amounts_are_per_currency() -> None:
    """30 means $0.30, never ¥30: a fixed amount applies in the currency it names."""
    pricing = parse_pricing(
        {"model": "blended", "percent_bps": 0, "fixed_minor": {"usd": 30, "jpy": 40}}
    )
    fees = {
        currency: price_item(
            pricing,
            TABLE,
            kind="capture",
            amount_minor=1_000,
            currency=currency,
            brand="visa",
            card_type=None,
            region="us",
        ).markup_minor
        for currency in ("usd", "jpy", "kwd")
    }
    assert fees == {"usd": 30, "jpy": 40, "kwd": 0}
    # A table row with a fixed part in USD only does not price yen: the fallback, flagged.
    icpp = parse_pricing({"model": "interchange_plus", "markup_bps": 0, "markup_fixed_minor": {}})
    usd, jpy = (
        price_item(
            icpp,
            TABLE,
            kind="capture",
            amount_minor=10_000,
            currency=currency,
            brand="visa",
            card_type="consumer_credit",
            region="us",
        )
        for currency in ("usd", "jpy")
    )
    assert usd.interchange_exact == Fraction(10_000 * 180, 10_000) + 10 and not usd.flags
    assert FLAG_INTERCHANGE_FALLBACK in jpy.flags
    assert jpy.interchange_exact == Fraction(10_000 * 300, 10_000) + 40  # fallback: 3% + ¥40
    with pytest.raises(InvariantViolation):
        parse_pricing({"model": "blended", "percent_bps": 0, "fixed_minor": 30})


def test_blended_brand_override_and_refund_has_no_fee() -> None:
    pricing = parse_pricing(
        {
            "model": "blended",
            "percent_bps": 290,
            "fixed_minor": {"usd": 30},
            "brand_overrides": {"amex": {"percent_bps": 350, "fixed_minor": {}}},
        }
    )
    visa = price_item(
        pricing, TABLE, kind="capture", amount_minor=10_000, currency="usd", brand="visa",
        card_type=None, region="us",
    )  # fmt: skip
    amex = price_item(
        pricing, TABLE, kind="capture", amount_minor=10_000, currency="usd", brand="amex",
        card_type=None, region="us",
    )  # fmt: skip
    refund = price_item(
        pricing, TABLE, kind="refund", amount_minor=10_000, currency="usd", brand="visa",
        card_type=None, region="us",
    )  # fmt: skip
    assert (visa.commission_minor, amex.commission_minor, refund.commission_minor) == (320, 350, 0)
    assert visa.interchange_minor == 0 and visa.markup_minor == 320


def test_region_for_country() -> None:
    assert [region_for_country(c) for c in ("US", "DE", "GB", "JP", "no")] == [
        "us", "eea", "uk", "intl", "eea",
    ]  # fmt: skip


@settings(max_examples=200)
@given(st.one_of(blended, icpp), st.lists(item, min_size=1, max_size=40))
def test_rounding_residuals_close_fee_totals(pricing: object, items: list[tuple]) -> None:  # type: ignore[type-arg]
    assert isinstance(pricing, BlendedPricing | InterchangePlusPricing)
    totals = FeeTotals()
    exact_total = Fraction(0)
    for kind, amount, brand, card_type, region, currency in items:
        priced = price_item(
            pricing, TABLE, kind=kind, amount_minor=amount, currency=currency, brand=brand,
            card_type=card_type, region=region,
        )  # fmt: skip
        totals.add(priced)
        exact_total += priced.interchange_exact + priced.scheme_fee_exact + priced.markup_exact
        # Each item is within half a minor unit of its exact value, per component.
        assert abs(priced.markup_minor - priced.markup_exact) <= Fraction(1, 2)
    payables = totals.interchange_payable + totals.scheme_fee_payable + totals.markup_revenue
    # Residuals sum to zero: what merchants pay = what platform accounts receive, to the unit.
    assert payables + totals.rounding_residual == totals.charged
    # Each payable is the exact sum rounded once, so it is within half a unit per component.
    assert abs(payables - exact_total) <= Fraction(3, 2)


@settings(max_examples=300)
@given(
    gross=st.integers(0, 10**12),
    refunds=st.integers(0, 10**12),
    fees=st.integers(-(10**6), 10**9),
    bps=st.integers(0, 10_000),
    released=st.integers(0, 10**9),
    carried=st.integers(-(10**9), 0),
    disputes=st.integers(-(10**9), 10**9),
    adjustments=st.integers(-(10**9), 10**9),
    dispute_fees=st.integers(-(10**5), 10**6),
    repaid=st.integers(0, 10**9),
)
def test_netting_and_legs_balance(
    gross: int,
    refunds: int,
    fees: int,
    bps: int,
    released: int,
    carried: int,
    disputes: int,
    adjustments: int,
    dispute_fees: int,
    repaid: int,
) -> None:
    held = reserve_hold_minor(gross, bps)
    fee_totals = FeeTotals(markup_exact=Fraction(fees), markup_charged=fees)
    netting = Netting(
        gross, refunds, fees, held, released, carried, disputes, adjustments, dispute_fees, repaid
    )
    legs = settlement_legs("mer_x", fee_totals, netting)
    # Every leg debits one account and credits another: zero-sum by construction; the merchant's
    # side moves exactly as the formula says.
    in_pending = gross - refunds - disputes + adjustments - dispute_fees
    assert netting.net_minor == in_pending - fees - held + released
    assert net_effect(legs, "mer_x", PENDING) == (-in_pending - carried + netting.carried_out_minor)
    # Available gets the payout but what it held to repay already (failed payouts' money).
    assert net_effect(legs, "mer_x", AVAILABLE) == netting.payout_minor - repaid
    assert net_effect(legs, "mer_x", RESERVE) == held - released
    assert netting.payout_minor >= 0 and netting.carried_out_minor <= 0
    assert netting.payout_minor + netting.carried_out_minor == netting.net_minor + carried + repaid
    assert netting.payout_minor * netting.carried_out_minor == 0
    # An available balance (holding the repayment) never goes negative within the legs, in order.
    available = repaid
    for leg in legs:
        available += net_effect([leg], "mer_x", AVAILABLE)
        assert available >= 0


def test_negative_residual_flips_the_rounding_leg() -> None:
    fees = FeeTotals()
    # Three items each exactly 0.5 -> each rounds to 0 (even), sum exact 1.5 -> 2: residual -2.
    for _ in range(3):
        fees.markup_exact += Fraction(1, 2)
    assert (fees.charged, fees.markup_revenue, fees.rounding_residual) == (0, 2, -2)
    legs = settlement_legs("mer_x", fees, Netting(100, 0, 0, 0, 0))
    rounding = [leg for leg in legs if leg.key == "rounding"]
    assert rounding[0].debit_owner == PLATFORM and rounding[0].debit_kind == ROUNDING
    assert rounding[0].amount_minor == 2


def test_check_settlement_catches_a_lost_item() -> None:
    items = ItemTotals()
    items.add("capture", 1_000, 30)
    items.add("refund", 200, 0)
    items.add("dispute", 300, 15)
    items.add("adjustment", -50, 0)
    fees = FeeTotals(markup_exact=Fraction(30), markup_charged=30)
    netting = Netting(1_000, 200, 30, 0, 0, 0, 300, -50, 15)
    legs = settlement_legs("mer_x", fees, netting)
    check_settlement("mer_x", items, fees, netting, legs)
    assert netting.net_minor == 1_000 - 200 - 300 - 50 - 30 - 15
    with pytest.raises(InvariantViolation):
        check_settlement("mer_x", items, fees, Netting(1_100, 200, 30, 0, 0), legs)
    with pytest.raises(InvariantViolation):  # the dispute left out
        check_settlement("mer_x", items, fees, Netting(1_000, 200, 30, 0, 0, 0, 0, -50), legs)
    with pytest.raises(InvariantViolation):
        check_settlement("mer_x", items, fees, netting, legs[:-1])


def test_a_dispute_larger_than_the_day_is_carried_like_a_negative_net() -> None:
    fees = FeeTotals()
    netting = Netting(1_000, 0, 0, 0, 0, disputes_minor=5_000, dispute_fees_minor=1_500)
    assert (netting.payout_minor, netting.carried_out_minor) == (0, -5_500)
    # The next day's captures pay the deficit first.
    later = Netting(10_000, 0, 0, 0, 0, carried_in_minor=-5_500)
    assert (later.payout_minor, later.carried_out_minor) == (4_500, 0)
    # Failed payouts' money to pay again absorbs a deficit too.
    repaid = Netting(0, 0, 0, 0, 0, carried_in_minor=-5_500, repaid_minor=2_000)
    assert (repaid.payout_minor, repaid.carried_out_minor, repaid.settled_minor) == (
        0,
        -3_500,
        -2_000,
    )
    legs = settlement_legs("mer_x", fees, repaid)
    assert net_effect(legs, "mer_x", AVAILABLE) == -2_000  # back to pending, against the deficit


def test_payouts_arrive_on_banking_days_never_before_they_exist() -> None:
    calendar = HolidayCalendar()
    # Christmas 2026 is a Friday: a payout due that day arrives on Monday the 28th.
    assert arrival_date(
        "usd", date(2026, 12, 24), 1, date(2026, 12, 25), calendar.next_banking_day
    ) == date(2026, 12, 28)
    # A date settled late: not the delay after the business date (past), the day it was made.
    assert arrival_date(
        "eur", date(2026, 3, 2), 2, date(2026, 3, 18), calendar.next_banking_day
    ) == date(2026, 3, 18)
    # Kuwait's weekend is Friday and Saturday; Japan's banks close for Golden Week.
    assert calendar.next_banking_day("kwd", date(2026, 3, 13)) == date(2026, 3, 15)
    assert calendar.next_banking_day("jpy", date(2026, 5, 3)) == date(2026, 5, 7)
    assert all(
        calendar.is_banking_day(c, calendar.next_banking_day(c, date(2026, 12, 24)))
        for c in CURRENCY_EXPONENTS
    )


def test_country_regions_are_the_one_table_of_regions() -> None:
    assert set(COUNTRY_REGIONS.values()) <= set(REGIONS) and DEFAULT_REGION in REGIONS
    assert {c for c, r in COUNTRY_REGIONS.items() if r == "eea"} == EEA_COUNTRIES
    assert [region_for_country(c) for c in ("US", "us", "GB", "gb", "CH", "BR")] == [
        "us", "us", "uk", "uk", "intl", "intl",
    ]  # fmt: skip


@settings(max_examples=50)
@given(
    st.sampled_from([*CARD_BRANDS, "elo"]),
    st.sampled_from(["eea", "us", "uk", "intl"]),
    amounts,
    st.sampled_from(CURRENCIES),
    st.sampled_from(CARD_TYPES),
)
def test_rate_grid_prices_as_price_item(
    brand: str, region: str, amount: int, currency: str, card_type: str | None
) -> None:
    """The grid the pricing statement receives gives an item of each card type (unknown: '')
    the fees and flags price_item gives it; a brand outside the grid falls back to the table's
    rates."""
    pricing = InterchangePlusPricing(Rate(Fraction(0)))
    grid = TABLE.rate_grid(CARD_BRANDS, CURRENCIES)
    priced = price_item(
        pricing, TABLE, kind="capture", amount_minor=amount, currency=currency, brand=brand,
        card_type=card_type, region=region,
    )  # fmt: skip
    key = (brand, card_type or "", region, currency)
    rows = [r for r in grid.rates if (r.brand, r.card_type, r.region, r.currency) == key]
    if rows:
        (row,) = rows
        ic, sf, ic_fallback, sf_fallback = (
            row.interchange, row.scheme_fee, row.interchange_fallback, row.scheme_fee_fallback
        )  # fmt: skip
    else:
        ic, sf, ic_fallback, sf_fallback = (
            grid.fallback_interchange, grid.fallback_scheme_fee, True, True
        )  # fmt: skip
    assert priced.interchange_exact == ic.exact(amount, currency)
    assert priced.scheme_fee_exact == sf.exact(amount, currency)
    assert priced.flags == tuple(
        flag
        for flag, on in (
            (FLAG_INTERCHANGE_FALLBACK, ic_fallback),
            (FLAG_SCHEME_FEE_FALLBACK, sf_fallback),
        )
        if on
    )
