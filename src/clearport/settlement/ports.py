"""What settlement needs from outside: its store, payout destinations, file renderers
and report sinks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.settlement.domain import (
    ItemLine,
    Payout,
    PayoutLine,
    Settlement,
    SettlementRun,
)


@dataclass(frozen=True, slots=True)
class PayoutDestination:
    account_holder: str
    currency: str
    routing_number: str | None = field(default=None, repr=False)
    account_number: str | None = field(default=None, repr=False)
    iban: str | None = field(default=None, repr=False)
    bic: str | None = field(default=None, repr=False)


class PayoutDestinations(Protocol):
    """The merchant's bank account for payouts (the vault decrypts it), or None."""

    async def destination(self, tx: Transaction, merchant_id: str) -> PayoutDestination | None: ...


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
    def finish(self, extra_summary: dict[str, Any] | None = None) -> Any: ...
    def abort(self) -> None: ...


class SettlementStore(Protocol):
    async def start_run(
        self,
        tx: Transaction,
        *,
        run_id: str,
        business_date: date,
        cutoff_at: datetime,
        lookback_from: datetime,
        partitions: int,
        created_by: str,
        now: datetime,
    ) -> tuple[SettlementRun, bool]: ...
    async def get_run(self, tx: Transaction, run_id: str) -> SettlementRun | None: ...
    async def first_source_at(self, tx: Transaction) -> datetime | None:
        """When the first capture or refund was posted, if any."""
        ...

    async def get_run_by_date(
        self, tx: Transaction, business_date: date
    ) -> SettlementRun | None: ...
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
    async def finish_run(
        self, tx: Transaction, run_id: str, status: str, stats: dict[str, Any], error: str | None,
        now: datetime,
    ) -> None: ...  # fmt: skip
    async def partition_pairs(
        self, tx: Transaction, run: SettlementRun, partition: int
    ) -> list[tuple[str, str]]: ...
    async def insert_settlements(
        self,
        tx: Transaction,
        run: SettlementRun,
        partition: int,
        rows: Sequence[tuple[str, str, str]],
        now: datetime,
    ) -> None: ...
    async def price_items(
        self,
        tx: Transaction,
        run: SettlementRun,
        partition: int,
        rates: Sequence[tuple[str, str, Any, int, bool, Any, int, bool]],
        fallback: tuple[Any, int, Any, int],
    ) -> dict[str, dict[str, Any]]: ...
    async def staged_count(self, tx: Transaction, run_id: str, partition: int) -> int: ...
    async def merchant_terms(
        self, tx: Transaction, merchant_ids: Sequence[str]
    ) -> dict[str, tuple[dict[str, Any], int]]: ...
    async def carried_in(
        self, tx: Transaction, pairs: Sequence[tuple[str, str]], before: date
    ) -> dict[tuple[str, str], int]: ...
    async def releases_due(
        self, tx: Transaction, merchant_ids: Sequence[str], on: date
    ) -> list[tuple[str, str, str, int]]: ...
    async def complete_settlements(
        self,
        tx: Transaction,
        totals: Sequence[dict[str, Any]],
        holds: Sequence[tuple[str, str, str, int, date]],
        releases: Sequence[tuple[str, str]],
        payouts: Sequence[tuple[str, str, str, int, str, date, str | None]],
        now: datetime,
    ) -> None: ...
    async def partition_report_csv(
        self, tx: Transaction, run_id: str, partition: int, output: Callable[[bytes], Any]
    ) -> None: ...
    async def partition_report_summary(
        self, tx: Transaction, run_id: str, partition: int
    ) -> dict[str, Any]: ...
    async def partitions_without_report(self, tx: Transaction, run_id: str) -> list[int]: ...
    async def set_partition_report(
        self, tx: Transaction, run_id: str, partition: int, report: dict[str, Any]
    ) -> None: ...
    async def due_payouts(self, tx: Transaction, on: date) -> list[Payout]: ...
    async def flag_payouts(self, tx: Transaction, ids: Sequence[str], flag: str) -> None: ...
    async def payout_file(self, tx: Transaction, business_date: date, currency: str) -> Any: ...
    async def record_payout_file(
        self,
        tx: Transaction,
        *,
        file_id: str,
        business_date: date,
        currency: str,
        fmt: str,
        key: str,
        uri: str,
        sha256: str,
        payout_ids: Sequence[str],
        total: int,
        now: datetime,
    ) -> None: ...
    async def get_payout(
        self, tx: Transaction, payout_id: str, *, for_update: bool = False
    ) -> Payout | None: ...
    async def set_payout_status(
        self, tx: Transaction, payout_id: str, status: str, failure_code: str | None, now: datetime
    ) -> None: ...
    async def get_settlement(self, tx: Transaction, settlement_id: str) -> Settlement | None: ...
    async def list_settlements(
        self, tx: Transaction, page: PageRequest, merchant_id: str | None, run_id: str | None
    ) -> Page[Settlement]: ...
    async def list_items(
        self, tx: Transaction, settlement_id: str, page: PageRequest
    ) -> Page[ItemLine]: ...
    async def list_payouts(
        self, tx: Transaction, page: PageRequest, merchant_id: str | None, status: str | None
    ) -> Page[Payout]: ...
    async def run_invariants(self, tx: Transaction, run: SettlementRun) -> list[str]: ...
