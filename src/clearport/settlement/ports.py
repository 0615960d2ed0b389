"""What settlement needs from outside: its store (one Protocol per part of the service, the same
seams as settlement/store/), payout destinations, file renderers and report sinks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.disputes.ports import FreeAvailable
from clearport.settlement.domain import (
    CarriedBalance,
    ItemAggregates,
    ItemLine,
    MerchantCurrency,
    MerchantTerms,
    NewPayout,
    OpenSettlement,
    PartitionReportTotals,
    Payout,
    PayoutFile,
    PayoutLine,
    ReportFiles,
    ReserveHold,
    ReserveHoldDue,
    ReserveRelease,
    RunProgress,
    Settlement,
    SettlementRun,
    SettlementTotals,
)
from clearport.settlement.fees import RateGrid


@dataclass(frozen=True, slots=True)
class PayoutDestination:
    account_holder: str
    currency: str
    routing_number: str | None = field(default=None, repr=False)
    account_number: str | None = field(default=None, repr=False)
    iban: str | None = field(default=None, repr=False)
    bic: str | None = field(default=None, repr=False)


class PayoutDestinations(Protocol):
    """Merchants' bank accounts for payouts (the vault decrypts them)."""

    async def destinations(
        self, tx: Transaction, merchant_ids: Sequence[str]
    ) -> Mapping[str, PayoutDestination]:
        """Those of `merchant_ids` that have one, by merchant, in one read (a night's files
        name tens of thousands of merchants: one round trip each was seconds)."""
        ...


class SettlementRepresentation(Protocol):
    """How the API shows what settlement changes (`http.representation` implements it): the
    events written with each change carry the object as shown right after it."""

    def settlement(self, settlement: Settlement) -> dict[str, Any]: ...
    def payout(self, payout: Payout) -> dict[str, Any]: ...
    def settlement_run(self, run: SettlementRun) -> dict[str, Any]: ...


class BankingCalendar(Protocol):
    """The days the banks of a currency settle (settlement/calendar.py)."""

    def next_banking_day(self, currency: str, on: date) -> date:
        """`on` if it is a banking day of `currency`, else the next one."""
        ...


class PayoutFileRenderer(Protocol):
    def render(
        self,
        fmt: str,
        lines: Sequence[PayoutLine],
        *,
        file_id: str,
        created_at: datetime,
        execution_date: date,
    ) -> bytes: ...


class ReportSinkLike(Protocol):
    def add_csv(self, data: bytes) -> None: ...
    async def finish(self, extra_summary: dict[str, Any] | None = None) -> ReportFiles:
        """Close the files and publish them to object storage: outside any transaction."""
        ...

    def abort(self) -> None: ...


class RunStore(Protocol):
    """Runs and their partitions: create and stage, claim, finish, check."""

    async def create_run(
        self,
        tx: Transaction,
        *,
        run_id: str,
        business_date: date,
        cutoff_at: datetime,
        lookback_from: datetime,
        partitions: int,
        stage_shares: int,
        created_by: str,
        now: datetime,
    ) -> SettlementRun | None:
        """The new run with its pending partitions and staging shares, not staged yet; None if
        the date has a run already."""
        ...

    async def prepare_items_partition(self, tx: Transaction, business_date: date) -> None:
        """The date's partition of items exists (a short transaction of its own)."""
        ...

    async def pending_stage_shares(self, tx: Transaction, run_id: str) -> list[int]:
        """The run's staging shares not staged yet (some may be being staged)."""
        ...

    async def stage_share(self, tx: Transaction, run: SettlementRun, share: int) -> bool:
        """Claim and stage one share of the run's eligible sources in this transaction; False
        if another worker has it or it is staged."""
        ...

    async def finish_staging(self, tx: Transaction, run: SettlementRun) -> SettlementRun:
        """Once every share is staged: the partitions' counts, `staged_at`, the run with its
        `staged` count (idempotent)."""
        ...

    async def restage_if_lost(self, tx: Transaction, run: SettlementRun, partition: int) -> int:
        """Stage again, from the run's claims, the pending partitions whose staged rows a crash
        emptied (they are UNLOGGED) if this one's are gone; how many partitions."""
        ...

    async def index_items(self, tx: Transaction, business_date: date) -> None:
        """Build the date's item indexes (once its partitions are all settled)."""
        ...

    async def get_run(self, tx: Transaction, run_id: str) -> SettlementRun | None: ...
    async def get_run_by_date(
        self, tx: Transaction, business_date: date
    ) -> SettlementRun | None: ...
    async def first_source_at(self, tx: Transaction) -> datetime | None:
        """When the first capture or refund was posted, if any."""
        ...

    async def pending_partitions(self, tx: Transaction, run_id: str) -> list[int]: ...
    async def claim_partition(self, tx: Transaction, run_id: str, partition: int) -> bool: ...
    async def mark_partition_done(
        self,
        tx: Transaction,
        run_id: str,
        partition: int,
        items: int,
        settlements: int,
        now: datetime,
    ) -> None: ...
    async def partitions_without_report(self, tx: Transaction, run_id: str) -> list[int]: ...
    async def run_invariants(self, tx: Transaction, run: SettlementRun) -> list[str]: ...
    async def fail_run(
        self, tx: Transaction, run_id: str, violations: Sequence[str], now: datetime
    ) -> None: ...
    async def complete_run(
        self, tx: Transaction, run_id: str, payout_files: Sequence[PayoutFile], now: datetime
    ) -> None: ...


class PricingStore(Protocol):
    """One partition: open its settlements, price their items, read what netting needs, record
    what it returns."""

    async def partition_pairs(
        self, tx: Transaction, run: SettlementRun, partition: int
    ) -> list[MerchantCurrency]: ...
    async def insert_settlements(
        self,
        tx: Transaction,
        run: SettlementRun,
        partition: int,
        settlements: Sequence[OpenSettlement],
        now: datetime,
    ) -> None: ...
    async def price_items(
        self,
        tx: Transaction,
        run: SettlementRun,
        partition: int,
        rates: RateGrid,
        report: Callable[[bytes], Awaitable[None]],
    ) -> list[ItemAggregates]:
        """Insert the partition's items, streaming their report lines (CSV) to `report`."""
        ...

    async def priced_report_totals(
        self, tx: Transaction, run_id: str, partition: int
    ) -> PartitionReportTotals:
        """The summary of the lines `price_items` streamed, in its transaction."""
        ...

    async def staged_count(self, tx: Transaction, run_id: str, partition: int) -> int: ...
    async def merchant_terms(
        self, tx: Transaction, merchant_ids: Sequence[str]
    ) -> list[MerchantTerms]: ...
    async def carried_in(
        self, tx: Transaction, pairs: Sequence[MerchantCurrency], before: date
    ) -> list[CarriedBalance]: ...
    async def releases_due(
        self, tx: Transaction, merchant_ids: Sequence[str], on: date
    ) -> list[ReserveHoldDue]: ...
    async def complete_settlements(
        self,
        tx: Transaction,
        totals: Sequence[SettlementTotals],
        holds: Sequence[ReserveHold],
        releases: Sequence[ReserveRelease],
        payouts: Sequence[NewPayout],
        now: datetime,
        repaid: Sequence[tuple[str, str]] = (),
    ) -> None: ...
    async def settlements_by_id(
        self, tx: Transaction, settlement_ids: Sequence[str]
    ) -> list[Settlement]:
        """The settlements just completed, read back for their events."""
        ...

    async def payouts_by_id(self, tx: Transaction, payout_ids: Sequence[str]) -> list[Payout]: ...


class PayoutStore(FreeAvailable, Protocol):
    """Payouts and payout files; and (disputes' port, settlement's to answer) what a merchant's
    available balance holds beyond its pending payouts: failed payouts' money, which a dispute
    may take first and the next settlement pays again."""

    async def failed_payouts_to_repay(
        self, tx: Transaction, pairs: Sequence[MerchantCurrency]
    ) -> dict[MerchantCurrency, list[str]]:
        """Failed payouts whose money no settlement has paid again yet, of the pairs that have
        some, locked; one statement for a partition's pairs (decision 0902)."""
        ...

    async def due_payouts(self, tx: Transaction, on: date) -> list[Payout]: ...
    async def flag_payouts(self, tx: Transaction, ids: Sequence[str], flag: str) -> None: ...
    async def has_payout_file(
        self, tx: Transaction, business_date: date, currency: str
    ) -> bool: ...
    async def record_payout_file(
        self, tx: Transaction, file: PayoutFile, payout_ids: Sequence[str]
    ) -> None: ...
    async def unstored_payout_files(self, tx: Transaction, on: date) -> list[PayoutFile]:
        """Files of `on` recorded but not yet in object storage."""
        ...

    async def get_payout_file(self, tx: Transaction, file_id: str) -> PayoutFile | None: ...
    async def payouts_in_file(self, tx: Transaction, file_id: str) -> list[Payout]:
        """The file's payouts in the order it lists them (by id)."""
        ...

    async def mark_payout_file_stored(
        self, tx: Transaction, file_id: str, now: datetime
    ) -> None: ...
    async def get_payout(
        self, tx: Transaction, payout_id: str, *, for_update: bool = False
    ) -> Payout | None: ...
    async def payout_by_identification(self, tx: Transaction, identification: str) -> Payout | None:
        """The payout whose NACHA entry carried this identification number, locked."""
        ...

    async def set_payout_status(
        self, tx: Transaction, payout_id: str, status: str, failure_code: str | None, now: datetime
    ) -> None: ...


class ReportStore(Protocol):
    async def partition_report_csv(
        self, tx: Transaction, run: SettlementRun, partition: int, output: Callable[[bytes], None]
    ) -> None: ...
    async def partition_report_totals(
        self, tx: Transaction, run: SettlementRun, partition: int
    ) -> PartitionReportTotals: ...
    async def set_partition_report(
        self, tx: Transaction, run_id: str, partition: int, report: ReportFiles
    ) -> None: ...


class QueryStore(Protocol):
    async def get_settlement(self, tx: Transaction, settlement_id: str) -> Settlement | None: ...
    async def list_settlements(
        self, tx: Transaction, page: PageRequest, merchant_id: str | None, run_id: str | None
    ) -> Page[Settlement]: ...
    async def item_created_at(
        self, tx: Transaction, settlement_id: str, source_id: str
    ) -> datetime | None:
        """When the item `source_id` of the settlement was created; None if it has no such
        item (a page cursor's position)."""
        ...

    async def list_items(
        self, tx: Transaction, settlement_id: str, page: PageRequest, cursor_at: datetime | None
    ) -> Page[ItemLine]:
        """Newest first by (created_at, source_id); `cursor_at` is the page cursor's
        `item_created_at`."""
        ...

    async def list_payouts(
        self, tx: Transaction, page: PageRequest, merchant_id: str | None, status: str | None
    ) -> Page[Payout]: ...

    async def list_runs(self, tx: Transaction, page: PageRequest) -> Page[RunProgress]:
        """Runs newest first, each with its partitions' progress."""
        ...

    async def recent_payout_files(self, tx: Transaction, limit: int) -> list[PayoutFile]:
        """The latest payout files, newest business date first (written or not yet stored)."""
        ...


class SettlementStore(RunStore, PricingStore, PayoutStore, ReportStore, QueryStore, Protocol):
    """The whole store, as wiring hands it to the service."""
