"""Settlement arithmetic: fee totals and rounding residuals, reserves, netting, ledger legs and
the invariants a run checks before it commits.

Per merchant x currency x business date (one `stl_` settlement):

    net      = gross - refunds - fees - reserve_held + reserve_released
    total    = net + carried_in            (carried_in <= 0: a negative total of an earlier day)
    payout   = max(total, 0)
    carried  = min(total, 0)               (carried forward to the next settlement, never paid)

Ledger legs (merchant accounts are credit-normal; see ledger/domain.py):

    fees      pending   -> interchange_payable / scheme_fee_payable / fee_revenue (+ rounding)
    reserve   pending   -> reserve                      (reserve_held)
    release   reserve   -> available                    (reserve_released)
    settle    pending   -> available                    (payout - reserve_released; may flip)
    payout    available -> payouts_in_transit           (when the payout file is written)

`available` rises by exactly the payout, and a negative total stays in `pending` as the carried
amount: pending moves by -(gross - refunds) - carried_in + carried_out. The ledger itself holds
the carry forward; the settlements table records it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from fractions import Fraction

from clearport.core.errors import invariant
from clearport.settlement.fees import BPS, PricedItem, round_half_even

PLATFORM = "platform"


# Account kinds, as the ledger's AccountKind values (kept as strings so the domain of settlement
# does not depend on the ledger's module layout).
PENDING = "pending"


AVAILABLE = "available"


RESERVE = "reserve"


FEE_REVENUE = "fee_revenue"


INTERCHANGE_PAYABLE = "interchange_payable"


SCHEME_FEE_PAYABLE = "scheme_fee_payable"


PAYOUTS_IN_TRANSIT = "payouts_in_transit"


ROUNDING = "rounding"


ITEM_KINDS = ("capture", "refund")


@dataclass(slots=True)
class FeeTotals:
    """Sum of per-item fees of one merchant x currency, and what each platform account receives.

    The merchant is charged the sum of per-item rounded fees. Each platform account receives the
    half-even rounding of the exact sum of its component; the difference (the rounding residual,
    positive or negative) goes to the rounding account. charged == payables + residual, always.
    """

    interchange_exact: Fraction = Fraction(0)
    scheme_fee_exact: Fraction = Fraction(0)
    markup_exact: Fraction = Fraction(0)
    interchange_charged: int = 0
    scheme_fee_charged: int = 0
    markup_charged: int = 0

    def add(self, item: PricedItem) -> None:
        self.interchange_exact += item.interchange_exact
        self.scheme_fee_exact += item.scheme_fee_exact
        self.markup_exact += item.markup_exact
        self.interchange_charged += item.interchange_minor
        self.scheme_fee_charged += item.scheme_fee_minor
        self.markup_charged += item.markup_minor

    @property
    def charged(self) -> int:
        return self.interchange_charged + self.scheme_fee_charged + self.markup_charged

    @property
    def interchange_payable(self) -> int:
        return round_half_even(self.interchange_exact)

    @property
    def scheme_fee_payable(self) -> int:
        return round_half_even(self.scheme_fee_exact)

    @property
    def markup_revenue(self) -> int:
        return round_half_even(self.markup_exact)

    @property
    def rounding_residual(self) -> int:
        return self.charged - (
            self.interchange_payable + self.scheme_fee_payable + self.markup_revenue
        )


def reserve_hold_minor(gross_minor: int, percent_bps: int) -> int:
    """A rolling reserve holds `percent_bps` of the day's gross captures (half-even)."""
    invariant(gross_minor >= 0 and 0 <= percent_bps <= BPS, "reserve inputs in range")
    return round_half_even(Fraction(gross_minor * percent_bps, BPS))


def reserve_release_date(business_date: date, hold_days: int) -> date:
    return business_date + timedelta(days=hold_days)


@dataclass(frozen=True, slots=True)
class Netting:
    gross_minor: int
    refunds_minor: int
    fees_minor: int
    reserve_held_minor: int
    reserve_released_minor: int
    carried_in_minor: int = 0

    def __post_init__(self) -> None:
        invariant(
            min(self.gross_minor, self.refunds_minor, self.reserve_held_minor) >= 0
            and self.reserve_released_minor >= 0,
            "netting inputs are non-negative amounts",
        )
        invariant(self.carried_in_minor <= 0, "only a negative total is carried forward")

    @property
    def net_minor(self) -> int:
        return (
            self.gross_minor
            - self.refunds_minor
            - self.fees_minor
            - self.reserve_held_minor
            + self.reserve_released_minor
        )

    @property
    def settled_minor(self) -> int:
        """pending -> available, so that available rises by exactly the payout (negative: the
        release that a carried deficit absorbs goes back from available to pending)."""
        return self.payout_minor - self.reserve_released_minor

    @property
    def total_minor(self) -> int:
        return self.net_minor + self.carried_in_minor

    @property
    def payout_minor(self) -> int:
        return max(self.total_minor, 0)

    @property
    def carried_out_minor(self) -> int:
        return min(self.total_minor, 0)


@dataclass(frozen=True, slots=True)
class Leg:
    """One ledger transfer, before it becomes the ledger's TransferRequest. Amount > 0."""

    key: str  # unique within the settlement: the ledger id is f"{settlement_id}:{key}"
    debit_owner: str
    debit_kind: str
    credit_owner: str
    credit_kind: str
    amount_minor: int
    code: str


def _leg(
    key: str, debit: tuple[str, str], credit: tuple[str, str], amount: int, code: str
) -> list[Leg]:
    """A leg of `amount`; a negative amount flips direction; zero writes nothing."""
    if amount == 0:
        return []
    if amount < 0:
        debit, credit, amount = credit, debit, -amount
    return [Leg(key, debit[0], debit[1], credit[0], credit[1], amount, code)]


def settlement_legs(merchant_id: str, fees: FeeTotals, netting: Netting) -> list[Leg]:
    """The aggregated ledger legs of one settlement (merchant x currency x date)."""
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
    """Count and signed sum of items, to compare with the sources they came from."""

    count: int = 0
    gross_minor: int = 0  # captures
    refunds_minor: int = 0
    fees_minor: int = 0
    net_minor: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, amount_minor: int, fee_minor: int) -> None:
        invariant(kind in ITEM_KINDS, f"unknown item kind {kind}")
        self.count += 1
        signed = amount_minor if kind == "capture" else -amount_minor
        if kind == "capture":
            self.gross_minor += amount_minor
        else:
            self.refunds_minor += amount_minor
        self.fees_minor += fee_minor
        self.net_minor += signed - fee_minor
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


def check_settlement(
    merchant_id: str, items: ItemTotals, fees: FeeTotals, netting: Netting, legs: list[Leg]
) -> None:
    """The per-settlement invariants; a violation aborts the run (InvariantViolation)."""
    invariant(items.gross_minor == netting.gross_minor, "items gross = settlement gross")
    invariant(items.refunds_minor == netting.refunds_minor, "items refunds = settlement refunds")
    invariant(items.fees_minor == fees.charged == netting.fees_minor, "items fees = fees charged")
    invariant(
        items.gross_minor - items.refunds_minor == items.net_minor + items.fees_minor,
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
        == -(netting.gross_minor - netting.refunds_minor)
        - netting.carried_in_minor
        + netting.carried_out_minor,
        "settlement empties the items' pending amounts, keeping only the carried deficit",
    )
    invariant(
        net_effect(legs, merchant_id, AVAILABLE) == netting.payout_minor,
        "available receives exactly the payout",
    )
    invariant(
        net_effect(legs, merchant_id, RESERVE)
        == netting.reserve_held_minor - netting.reserve_released_minor,
        "reserve moves by held - released",
    )
    invariant(
        netting.net_minor + netting.carried_in_minor
        == netting.payout_minor + netting.carried_out_minor,
        "net + carried in = payout + carried forward",
    )
    invariant(all(leg.amount_minor > 0 for leg in legs), "legs carry positive amounts")


@dataclass(frozen=True, slots=True)
class PayoutLine:
    """One payout as a payout file needs it. Bank numbers are kept out of repr (and logs)."""

    payout_id: str
    merchant_id: str
    amount_minor: int
    currency: str
    account_holder: str
    execution_date: date
    routing_number: str | None = field(default=None, repr=False)
    account_number: str | None = field(default=None, repr=False)
    iban: str | None = field(default=None, repr=False)
    bic: str | None = field(default=None, repr=False)


def payout_file_format(currency: str) -> str:
    """NACHA for USD, ISO 20022 pain.001 (SEPA credit transfer) for EUR, CSV otherwise."""
    return {"usd": "nacha", "eur": "pain001"}.get(currency, "csv")


@dataclass(frozen=True, slots=True)
class ItemLine:
    """One settled item as the detail report shows it (amounts in minor units, signed: a refund's
    gross and net are negative). commission = interchange + scheme_fee + markup = gross - net."""

    settlement_id: str
    merchant_id: str
    payment_id: str
    source_id: str
    reference: str | None
    type: str
    brand: str | None
    currency: str
    gross_minor: int
    interchange_minor: int
    scheme_fee_minor: int
    markup_minor: int
    commission_minor: int
    net_minor: int
    flags: str


@dataclass(slots=True)
class ReportSummary:
    count: int = 0
    gross_minor: int = 0
    refunds_minor: int = 0
    interchange_minor: int = 0
    scheme_fee_minor: int = 0
    markup_minor: int = 0
    commission_minor: int = 0
    net_minor: int = 0
    flagged: int = 0

    def add(self, line: ItemLine) -> None:
        invariant(
            line.gross_minor - line.commission_minor == line.net_minor
            and line.commission_minor
            == line.interchange_minor + line.scheme_fee_minor + line.markup_minor,
            f"item {line.source_id}: gross = net + fees",
        )
        self.count += 1
        if line.gross_minor >= 0:
            self.gross_minor += line.gross_minor
        else:
            self.refunds_minor -= line.gross_minor
        self.interchange_minor += line.interchange_minor
        self.scheme_fee_minor += line.scheme_fee_minor
        self.markup_minor += line.markup_minor
        self.commission_minor += line.commission_minor
        self.net_minor += line.net_minor
        self.flagged += 1 if line.flags else 0


# --- records -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettlementRun:
    id: str
    business_date: date
    cutoff_at: datetime
    lookback_from: datetime
    partitions: int
    status: str  # running | completed | failed
    error: str | None
    stats: dict[str, object]
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Settlement:
    id: str
    run_id: str
    business_date: date
    merchant_id: str
    currency: str
    count: int
    gross: int
    refunds: int
    fees: int
    interchange: int
    scheme_fees: int
    markup: int
    rounding: int
    reserve_held: int
    reserve_released: int
    net: int
    carried_in: int
    carried_out: int
    payout: int
    payout_id: str | None
    flagged_items: int
    report: dict[str, object] | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Payout:
    id: str
    merchant_id: str
    settlement_id: str
    amount: int
    currency: str
    status: str  # pending | in_transit | paid | failed
    arrival_date: date
    payout_file_id: str | None
    flag: str | None
    failure_code: str | None
    created_at: datetime
    updated_at: datetime


PAYOUT_TRANSITIONS = {
    "pending": frozenset({"in_transit"}),
    "in_transit": frozenset({"paid", "failed"}),
    "paid": frozenset({"failed"}),  # an ACH return can arrive after the payout was marked paid
    "failed": frozenset(),
}


@dataclass(frozen=True, slots=True)
class SettlementOptions:
    cutoff: time = time(0, 0)  # local time on the day after the business date
    timezone: str = "UTC"
    partitions: int = 8
    lookback_days: int = 7
    chunk_size: int = 50_000
