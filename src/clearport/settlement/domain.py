"""Settlement's vocabulary and records: the accounts it posts to, ledger legs, what netting a
partition reads and returns (settlement/netting.py does the arithmetic), runs, settlements,
payouts, payout files and report lines.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from clearport.core.errors import invariant
from clearport.settlement.fees import FeeTotals

# Account kinds, as the ledger's AccountKind values (kept as strings so the domain of settlement
# does not depend on the ledger's module layout).
PLATFORM = "platform"
PENDING = "pending"
AVAILABLE = "available"
RESERVE = "reserve"
FEE_REVENUE = "fee_revenue"
INTERCHANGE_PAYABLE = "interchange_payable"
SCHEME_FEE_PAYABLE = "scheme_fee_payable"
PAYOUTS_IN_TRANSIT = "payouts_in_transit"
ROUNDING = "rounding"

# What a settlement settles: captures (+) and refunds (-); disputes (-: the amount taken from the
# merchant when the chargeback came) and their reversals (+: given back when won), each with the
# dispute fee charged (or returned) at that moment; adjustments (signed).
ITEM_KINDS = ("capture", "refund", "dispute", "dispute_reversal", "adjustment")


def item_gross(kind: str, amount_minor: int) -> int:
    """An item's signed gross from its source's amount (positive, but an adjustment's: signed)."""
    if kind in ("capture", "dispute_reversal", "adjustment"):
        return amount_minor
    invariant(kind in ("refund", "dispute"), f"unknown item kind {kind}")
    return -amount_minor


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


# --- netting one partition: what the store reads, what netting returns -------------------------


@dataclass(frozen=True, slots=True)
class MerchantCurrency:
    """What one settlement is for, on a business date."""

    merchant_id: str
    currency: str


@dataclass(frozen=True, slots=True)
class OpenSettlement:
    """A settlement row opened for a merchant x currency of a partition; totals come later."""

    id: str
    merchant_id: str
    currency: str

    @property
    def pair(self) -> MerchantCurrency:
        return MerchantCurrency(self.merchant_id, self.currency)


@dataclass(frozen=True, slots=True)
class ItemAggregates:
    """One settlement's items, as the pricing statement priced and summed them."""

    settlement_id: str
    count: int
    gross_minor: int  # captures
    refunds_minor: int
    fees: FeeTotals  # the captures' fees, charged by this settlement
    net_minor: int  # the items' own nets: gross - commission, item by item
    flagged: int  # items priced with a fallback rate
    disputes_minor: int = 0  # disputed amounts taken minus those given back
    adjustments_minor: int = 0  # signed
    dispute_fees_minor: int = 0  # charged (or returned) when the dispute moved, not now

    @staticmethod
    def empty(settlement_id: str) -> ItemAggregates:
        """A settlement without items: only a reserve release or a repayment is due."""
        return ItemAggregates(settlement_id, 0, 0, 0, FeeTotals(), 0, 0)


@dataclass(frozen=True, slots=True)
class MerchantTerms:
    """The merchant's terms that settlement applies: its rolling reserve, its payout delay."""

    merchant_id: str
    reserve_percent_bps: int
    reserve_hold_days: int
    payout_delay_days: int


@dataclass(frozen=True, slots=True)
class CarriedBalance:
    """What the pair's latest earlier settlement carried forward (never positive)."""

    merchant_id: str
    currency: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class ReserveHoldDue:
    """A reserve an earlier settlement held, whose release date has come."""

    held_by: str  # the settlement that held it: the hold's key
    merchant_id: str
    currency: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Repayment:
    """Failed payouts' money back in the merchant's available balance, to be paid again: what
    is there (`amount_minor`, what disputes left of it) and the payouts it came from."""

    merchant_id: str
    currency: str
    amount_minor: int
    payout_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SettlementInput:
    """What netting one settlement needs: its items, its merchant's terms, what it carries in,
    the reserves due back and failed payouts' money to pay again."""

    settlement: OpenSettlement
    items: ItemAggregates
    terms: MerchantTerms
    carried_in_minor: int
    releases_due: tuple[ReserveHoldDue, ...]
    repaid_minor: int = 0


@dataclass(frozen=True, slots=True)
class SettlementTotals:
    """The totals a settlement row records."""

    settlement_id: str
    count: int
    gross_minor: int
    refunds_minor: int
    fees_minor: int
    interchange_minor: int
    scheme_fees_minor: int
    markup_minor: int
    rounding_minor: int
    reserve_held_minor: int
    reserve_released_minor: int
    net_minor: int
    carried_in_minor: int
    carried_out_minor: int
    payout_minor: int
    flagged_items: int
    disputes_minor: int = 0
    adjustments_minor: int = 0
    dispute_fees_minor: int = 0  # within fees_minor
    repaid_minor: int = 0


@dataclass(frozen=True, slots=True)
class ReserveHold:
    """A reserve a settlement holds until `release_on`."""

    settlement_id: str
    merchant_id: str
    currency: str
    amount_minor: int
    release_on: date


@dataclass(frozen=True, slots=True)
class ReserveRelease:
    """A hold released by a settlement."""

    held_by: str  # the hold, by the settlement that held it
    released_by: str  # the settlement that releases it


@dataclass(frozen=True, slots=True)
class PayoutDue:
    """What a settlement pays out, and when it arrives."""

    settlement_id: str
    merchant_id: str
    currency: str
    amount_minor: int
    arrival_date: date


@dataclass(frozen=True, slots=True)
class NewPayout:
    """A payout due, under the id it is inserted with."""

    id: str
    due: PayoutDue


@dataclass(frozen=True, slots=True)
class SettlementNetting:
    """One settlement netted: its totals, its ledger legs, and what it pays, holds, releases."""

    settlement: OpenSettlement
    totals: SettlementTotals
    legs: tuple[Leg, ...]
    payout: PayoutDue | None
    hold: ReserveHold | None
    releases: tuple[ReserveRelease, ...]


# --- payouts, reports, runs ---------------------------------------------------------------------


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
class PayoutFile:
    """A payout file in object storage: one per business date and currency."""

    id: str
    business_date: date
    currency: str
    format: str  # nacha | pain001 | csv
    object_key: str
    uri: str
    sha256: str
    count: int
    total_minor: int
    created_at: datetime

    def summary(self) -> dict[str, object]:
        """The file as the run's stats list it."""
        return {
            "id": self.id,
            "format": self.format,
            "key": self.object_key,
            "sha256": self.sha256,
            "count": self.count,
        }


# A settled item's id is its source's: the captured payment's, the refund's, the dispute's, its
# reversal's or the adjustment's.
ITEM_ID_PREFIXES = ("pay", "rfd", "dp", "dpr", "adj")


@dataclass(frozen=True, slots=True)
class ItemLine:
    """One settled item as the detail report shows it (amounts in minor units, signed: a refund's
    gross and net are negative). commission = interchange + scheme_fee + markup = gross - net."""

    settlement_id: str
    merchant_id: str
    payment_id: str | None  # None for an adjustment
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
    disputes_minor: int = 0
    adjustments_minor: int = 0
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
        match line.type:
            case "capture":
                self.gross_minor += line.gross_minor
            case "refund":
                self.refunds_minor -= line.gross_minor
            case "dispute" | "dispute_reversal":
                self.disputes_minor -= line.gross_minor
            case _:
                self.adjustments_minor += line.gross_minor
        self.interchange_minor += line.interchange_minor
        self.scheme_fee_minor += line.scheme_fee_minor
        self.markup_minor += line.markup_minor
        self.commission_minor += line.commission_minor
        self.net_minor += line.net_minor
        self.flagged += 1 if line.flags else 0


@dataclass(frozen=True, slots=True)
class PartitionReportTotals:
    """A partition's items summed in SQL, beside its settlements' net: the report's summary."""

    count: int
    gross_minor: int
    refunds_minor: int
    disputes_minor: int
    adjustments_minor: int
    interchange_minor: int
    scheme_fee_minor: int
    markup_minor: int
    commission_minor: int
    net_minor: int
    flagged: int
    settlements: int
    settlements_net_minor: int


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """A written report: its files' addresses, its summary and the files' digests."""

    csv_uri: str
    parquet_uri: str
    summary_uri: str
    summary: dict[str, Any]
    sha256: dict[str, str] = field(default_factory=dict)


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
    # Shares its sources are staged in (decision 0914), and when the last one was summed up:
    # None while staging, and no partition is settled before.
    stage_shares: int = 1
    staged_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunProgress:
    """How far a run has got: its partitions done, what they settled (the console's view)."""

    run: SettlementRun
    partitions_done: int
    items: int
    settlements: int


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
    disputes: int = 0
    adjustments: int = 0
    dispute_fees: int = 0
    repaid: int = 0


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
    repaid_by: str | None = None  # the settlement that paid a failed payout's money again


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
    # Partitions settled (and staging shares staged) at once by one process, each on a
    # connection of its own (decision 0914): by default one per CPU, so that the server's
    # backends, not this process's single thread, set the pace.
    workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))

    def __post_init__(self) -> None:
        invariant(self.workers >= 1, "settlement workers is at least 1")
