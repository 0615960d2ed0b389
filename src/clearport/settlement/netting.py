"""Settlement arithmetic: fee totals and rounding residuals, reserves, netting, ledger legs and
the invariants a run checks before it commits. Pure: `net_partition` takes what the store read
for one partition and returns what the store writes and the ledger posts.

Per merchant x currency x business date (one `stl_` settlement):

    net      = gross - refunds - disputes + adjustments - fees - reserve_held + reserve_released
    total    = net + carried_in + repaid   (carried_in <= 0: a negative total of an earlier day;
                                            repaid >= 0: failed payouts' money paid again)
    payout   = max(total, 0)
    carried  = min(total, 0)               (carried forward to the next settlement, never paid)

`fees` are the captures' fees, charged now, plus the dispute fees charged when the disputes came
(already posted then: this settlement shows them, it does not charge them again).

Ledger legs (merchant accounts are credit-normal; see ledger/domain.py):

    fees      pending   -> interchange_payable / scheme_fee_payable / fee_revenue (+ rounding)
    reserve   pending   -> reserve                      (reserve_held)
    release   reserve   -> available                    (reserve_released)
    settle    pending   -> available                    (payout - reserve_released - repaid;
                                                         may flip)
    payout    available -> payouts_in_transit           (when the payout file is written)

`available` rises by exactly the payout less what was already there to repay, and a negative
total stays in `pending` as the carried amount: pending moves by -(what the items put there) -
carried_in + carried_out. The ledger itself holds the carry forward; the settlements table records
it (and the balance shows it as a negative available: decision 0701).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from clearport.core.errors import invariant, present
from clearport.settlement.domain import (
    AVAILABLE,
    FEE_REVENUE,
    INTERCHANGE_PAYABLE,
    ITEM_KINDS,
    PENDING,
    PLATFORM,
    RESERVE,
    ROUNDING,
    SCHEME_FEE_PAYABLE,
    CarriedBalance,
    ItemAggregates,
    Leg,
    MerchantCurrency,
    MerchantTerms,
    OpenSettlement,
    PayoutDue,
    Repayment,
    ReserveHold,
    ReserveHoldDue,
    ReserveRelease,
    SettlementInput,
    SettlementNetting,
    SettlementTotals,
    item_gross,
)
from clearport.settlement.fees import BPS, FeeSplit, FeeTotals, divide_half_even

# The first banking day on or after a date, in a currency's calendar (settlement/calendar.py).
BankingDays = Callable[[str, date], date]


def reserve_hold_minor(gross_minor: int, percent_bps: int) -> int:
    """A rolling reserve holds `percent_bps` of the day's gross captures (half-even)."""
    invariant(gross_minor >= 0 and 0 <= percent_bps <= BPS, "reserve inputs in range")
    return divide_half_even(gross_minor * percent_bps, BPS)


def reserve_release_date(business_date: date, hold_days: int) -> date:
    return business_date + timedelta(days=hold_days)


@dataclass(frozen=True, slots=True)
class Netting:
    gross_minor: int
    refunds_minor: int
    fees_minor: int  # the captures' fees, charged by this settlement
    reserve_held_minor: int
    reserve_released_minor: int
    carried_in_minor: int = 0
    disputes_minor: int = 0  # taken minus given back (signed)
    adjustments_minor: int = 0  # signed
    dispute_fees_minor: int = 0  # posted when the disputes moved (signed)
    repaid_minor: int = 0

    def __post_init__(self) -> None:
        invariant(
            min(self.gross_minor, self.refunds_minor, self.reserve_held_minor) >= 0
            and min(self.reserve_released_minor, self.repaid_minor) >= 0,
            "netting inputs are non-negative amounts",
        )
        invariant(self.carried_in_minor <= 0, "only a negative total is carried forward")

    @property
    def items_pending_minor(self) -> int:
        """What the items put into the merchant's pending account when they happened."""
        return (
            self.gross_minor
            - self.refunds_minor
            - self.disputes_minor
            + self.adjustments_minor
            - self.dispute_fees_minor
        )

    @property
    def net_minor(self) -> int:
        return (
            self.items_pending_minor
            - self.fees_minor
            - self.reserve_held_minor
            + self.reserve_released_minor
        )

    @property
    def settled_minor(self) -> int:
        """pending -> available, so that available rises by exactly the payout, less what it
        held already to repay (negative: the release or repayment that a carried deficit
        absorbs goes back from available to pending)."""
        return self.payout_minor - self.reserve_released_minor - self.repaid_minor

    @property
    def total_minor(self) -> int:
        return self.net_minor + self.carried_in_minor + self.repaid_minor

    @property
    def payout_minor(self) -> int:
        return max(self.total_minor, 0)

    @property
    def carried_out_minor(self) -> int:
        return min(self.total_minor, 0)


def _leg(
    key: str, debit: tuple[str, str], credit: tuple[str, str], amount: int, code: str
) -> list[Leg]:
    """A leg of `amount`; a negative amount flips direction; zero writes nothing."""
    if amount == 0:
        return []
    if amount < 0:
        debit, credit, amount = credit, debit, -amount
    return [Leg(key, debit[0], debit[1], credit[0], credit[1], amount, code)]


def settlement_legs(merchant_id: str, fees: FeeTotals | FeeSplit, netting: Netting) -> list[Leg]:
    """The aggregated ledger legs of one settlement (merchant x currency x date); `fees` split
    once (FeeSplit) where the caller reads them again, as `net_settlement` does."""
    invariant(fees.charged == netting.fees_minor, "fee totals match the netting")
    pending = (merchant_id, PENDING)
    legs: list[Leg] = []
    legs += _leg(
        "interchange", pending, (PLATFORM, INTERCHANGE_PAYABLE), fees.interchange_payable, "fee"
    )
    legs += _leg(
        "scheme_fee", pending, (PLATFORM, SCHEME_FEE_PAYABLE), fees.scheme_fee_payable, "fee"
    )
    legs += _leg("markup", pending, (PLATFORM, FEE_REVENUE), fees.markup_revenue, "fee")
    legs += _leg("rounding", pending, (PLATFORM, ROUNDING), fees.rounding_residual, "fee")
    legs += _leg(
        "reserve_hold", pending, (merchant_id, RESERVE), netting.reserve_held_minor, "reserve_hold"
    )
    legs += _leg(
        "reserve_release",
        (merchant_id, RESERVE),
        (merchant_id, AVAILABLE),
        netting.reserve_released_minor,
        "reserve_release",
    )
    # After the release: a negative settle leg debits available, which the flag
    # "debits must not exceed credits" checks at the end of the journal.
    legs += _leg("settle", pending, (merchant_id, AVAILABLE), netting.settled_minor, "settle")
    return legs


def net_effect(legs: Iterable[Leg], owner: str, kind: str) -> int:
    """Credits minus debits of one account over `legs` (the credit-normal balance change)."""
    total = 0
    for leg in legs:
        if (leg.credit_owner, leg.credit_kind) == (owner, kind):
            total += leg.amount_minor
        if (leg.debit_owner, leg.debit_kind) == (owner, kind):
            total -= leg.amount_minor
    return total


@dataclass(slots=True)
class ItemTotals:
    """Count and signed sums of items, to compare with the sources they came from."""

    count: int = 0
    gross_minor: int = 0  # captures
    refunds_minor: int = 0
    disputes_minor: int = 0
    adjustments_minor: int = 0
    fees_minor: int = 0  # every item's commission: captures' fees and dispute fees
    net_minor: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, amount_minor: int, fee_minor: int) -> None:
        invariant(kind in ITEM_KINDS, f"unknown item kind {kind}")
        self.count += 1
        signed = item_gross(kind, amount_minor)
        match kind:
            case "capture":
                self.gross_minor += amount_minor
            case "refund":
                self.refunds_minor += amount_minor
            case "dispute" | "dispute_reversal":
                self.disputes_minor -= signed
            case _:
                self.adjustments_minor += signed
        self.fees_minor += fee_minor
        self.net_minor += signed - fee_minor
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


def check_settlement(
    merchant_id: str,
    items: ItemTotals,
    fees: FeeTotals | FeeSplit,
    netting: Netting,
    legs: list[Leg],
) -> None:
    """The per-settlement invariants; a violation aborts the run (InvariantViolation)."""
    invariant(items.gross_minor == netting.gross_minor, "items gross = settlement gross")
    invariant(items.refunds_minor == netting.refunds_minor, "items refunds = settlement refunds")
    invariant(items.disputes_minor == netting.disputes_minor, "items disputes = settlement's")
    invariant(
        items.adjustments_minor == netting.adjustments_minor, "items adjustments = settlement's"
    )
    invariant(
        items.fees_minor == fees.charged + netting.dispute_fees_minor
        and fees.charged == netting.fees_minor,
        "items fees = fees charged + dispute fees",
    )
    invariant(
        items.gross_minor - items.refunds_minor - items.disputes_minor + items.adjustments_minor
        == items.net_minor + items.fees_minor,
        "gross = net + fees per item",
    )
    invariant(
        fees.interchange_payable
        + fees.scheme_fee_payable
        + fees.markup_revenue
        + fees.rounding_residual
        == fees.charged,
        "rounding residuals close the fee totals",
    )
    invariant(
        net_effect(legs, merchant_id, PENDING)
        == -netting.items_pending_minor - netting.carried_in_minor + netting.carried_out_minor,
        "settlement empties the items' pending amounts, keeping only the carried deficit",
    )
    invariant(
        net_effect(legs, merchant_id, AVAILABLE) == netting.payout_minor - netting.repaid_minor,
        "available receives exactly the payout, less the repayment it held already",
    )
    invariant(
        net_effect(legs, merchant_id, RESERVE)
        == netting.reserve_held_minor - netting.reserve_released_minor,
        "reserve moves by held - released",
    )
    invariant(
        netting.net_minor + netting.carried_in_minor + netting.repaid_minor
        == netting.payout_minor + netting.carried_out_minor,
        "net + carried in + repaid = payout + carried forward",
    )
    invariant(all(leg.amount_minor > 0 for leg in legs), "legs carry positive amounts")


def arrival_date(
    currency: str, business_date: date, delay_days: int, created_on: date, banking: BankingDays
) -> date:
    """When a payout arrives: the payout delay after the business date, never before the payout
    exists, on a banking day of its currency."""
    return banking(currency, max(business_date + timedelta(days=delay_days), created_on))


def net_settlement(
    business_date: date, given: SettlementInput, *, created_on: date, banking: BankingDays
) -> SettlementNetting:
    """Net one settlement of `business_date`, made on `created_on`; its invariants are checked
    (InvariantViolation)."""
    stl, items, terms = given.settlement, given.items, given.terms
    invariant(items.settlement_id == stl.id, f"{stl.id}: the aggregates are its own")
    invariant(terms.merchant_id == stl.merchant_id, f"{stl.id}: the terms are its merchant's")
    invariant(
        all(MerchantCurrency(h.merchant_id, h.currency) == stl.pair for h in given.releases_due),
        f"{stl.id}: the releases due are its merchant's, in its currency",
    )
    fees = items.fees.split()  # each exact fee sum rounded once, read below several times
    held = reserve_hold_minor(items.gross_minor, terms.reserve_percent_bps)
    netting = Netting(
        gross_minor=items.gross_minor,
        refunds_minor=items.refunds_minor,
        fees_minor=fees.charged,
        reserve_held_minor=held,
        reserve_released_minor=sum(hold.amount_minor for hold in given.releases_due),
        carried_in_minor=given.carried_in_minor,
        disputes_minor=items.disputes_minor,
        adjustments_minor=items.adjustments_minor,
        dispute_fees_minor=items.dispute_fees_minor,
        repaid_minor=given.repaid_minor,
    )
    item_totals = ItemTotals(
        count=items.count,
        gross_minor=items.gross_minor,
        refunds_minor=items.refunds_minor,
        disputes_minor=items.disputes_minor,
        adjustments_minor=items.adjustments_minor,
        fees_minor=fees.charged + items.dispute_fees_minor,
        net_minor=items.net_minor,
    )
    legs = settlement_legs(stl.merchant_id, fees, netting)
    check_settlement(stl.merchant_id, item_totals, fees, netting, legs)
    payout = None
    if netting.payout_minor > 0:
        arrival = arrival_date(
            stl.currency, business_date, terms.payout_delay_days, created_on, banking
        )
        payout = PayoutDue(stl.id, stl.merchant_id, stl.currency, netting.payout_minor, arrival)
    hold = None
    if held > 0:
        release_on = reserve_release_date(business_date, terms.reserve_hold_days)
        hold = ReserveHold(stl.id, stl.merchant_id, stl.currency, held, release_on)
    totals = SettlementTotals(
        settlement_id=stl.id,
        count=items.count,
        gross_minor=items.gross_minor,
        refunds_minor=items.refunds_minor,
        fees_minor=fees.charged + items.dispute_fees_minor,
        interchange_minor=items.fees.interchange_charged,
        scheme_fees_minor=items.fees.scheme_fee_charged,
        markup_minor=items.fees.markup_charged,
        rounding_minor=fees.rounding_residual,
        reserve_held_minor=held,
        reserve_released_minor=netting.reserve_released_minor,
        net_minor=netting.net_minor,
        carried_in_minor=netting.carried_in_minor,
        carried_out_minor=netting.carried_out_minor,
        payout_minor=netting.payout_minor,
        flagged_items=items.flagged,
        disputes_minor=items.disputes_minor,
        adjustments_minor=items.adjustments_minor,
        dispute_fees_minor=items.dispute_fees_minor,
        repaid_minor=netting.repaid_minor,
    )
    releases = tuple(ReserveRelease(hold.held_by, stl.id) for hold in given.releases_due)
    return SettlementNetting(stl, totals, tuple(legs), payout, hold, releases)


def net_partition(
    business_date: date,
    settlements: Sequence[OpenSettlement],
    *,
    aggregates: Iterable[ItemAggregates],
    terms: Iterable[MerchantTerms],
    carried_in: Iterable[CarriedBalance],
    releases_due: Iterable[ReserveHoldDue],
    repayments: Iterable[Repayment] = (),
    created_on: date,
    banking: BankingDays,
) -> list[SettlementNetting]:
    """Net every settlement a partition opened (in their order), from what the store read."""
    ids = {stl.id for stl in settlements}
    pairs = {stl.pair for stl in settlements}
    invariant(len(ids) == len(pairs) == len(settlements), "one settlement per merchant x currency")
    items = {agg.settlement_id: agg for agg in aggregates}
    invariant(items.keys() <= ids, "priced items belong to the partition's settlements")
    terms_of = {t.merchant_id: t for t in terms}
    carried = {MerchantCurrency(c.merchant_id, c.currency): c.amount_minor for c in carried_in}
    due: dict[MerchantCurrency, list[ReserveHoldDue]] = {}
    for hold in releases_due:
        due.setdefault(MerchantCurrency(hold.merchant_id, hold.currency), []).append(hold)
    invariant(due.keys() <= pairs, "every release due has its settlement")
    repaid = {MerchantCurrency(r.merchant_id, r.currency): r.amount_minor for r in repayments}
    invariant(repaid.keys() <= pairs, "every repayment has its settlement")
    return [
        net_settlement(
            business_date,
            SettlementInput(
                settlement=stl,
                items=items.get(stl.id) or ItemAggregates.empty(stl.id),
                terms=present(terms_of.get(stl.merchant_id), f"the terms of {stl.merchant_id}"),
                carried_in_minor=carried.get(stl.pair, 0),
                releases_due=tuple(due.get(stl.pair, ())),
                repaid_minor=repaid.get(stl.pair, 0),
            ),
            created_on=created_on,
            banking=banking,
        )
        for stl in settlements
    ]
