"""Nightly settlement, one service for the entry points, in five parts (the same seams as
settlement/store/):

- run.py       start or join a date's run, settle its partitions, finalize it;
- pricing.py   one partition: price its items in SQL, net them in the domain, post, record;
- payouts.py   payout files, and a payout's outcome;
- reports.py   a partition's detail report;
- queries.py   runs, settlements, items and payouts read back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from clearport.access.domain import Origin, Principal
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import UnitOfWork
from clearport.events.service import Outbox
from clearport.ledger.service import LedgerService
from clearport.settlement.domain import (
    ItemLine,
    Payout,
    PayoutFile,
    RunProgress,
    Settlement,
    SettlementOptions,
    SettlementRun,
)
from clearport.settlement.fees import InterchangeTable
from clearport.settlement.ports import (
    BankingCalendar,
    PayoutDestinations,
    PayoutFileRenderer,
    ReportSinkLike,
    SettlementRepresentation,
    SettlementStore,
)
from clearport.settlement.service.payouts import ReturnsImport, SettlementPayouts
from clearport.settlement.service.pricing import PartitionPricing
from clearport.settlement.service.queries import SettlementQueries
from clearport.settlement.service.reports import PartitionReports
from clearport.settlement.service.run import Progress, SettlementRuns
from clearport.storage.ports import ObjectStorage


class SettlementService:
    def __init__(
        self,
        uow: UnitOfWork,
        store: SettlementStore,
        ledger: LedgerService,
        storage: ObjectStorage,
        report_sink: Callable[[str], ReportSinkLike],
        renderer: PayoutFileRenderer,
        destinations: PayoutDestinations,
        auditor: Auditor,
        clock: Clock,
        tables: Callable[[date], InterchangeTable],
        calendar: BankingCalendar,
        options: SettlementOptions,
        outbox: Outbox,
        shown: SettlementRepresentation,
        work: UnitOfWork | None = None,
    ) -> None:
        """`outbox` and `shown` write the events of settlements, payouts and runs in the
        transactions that change them; `work` is the pool a run's partitions and staging
        shares are settled on, `options.workers` at once (the main pool when None)."""
        self.options = options
        self._reports = PartitionReports(uow, store, report_sink)
        self._payouts = SettlementPayouts(
            uow,
            store,
            ledger,
            storage,
            renderer,
            destinations,
            auditor,
            clock,
            outbox,
            shown,
            calendar,
        )
        self._runs = SettlementRuns(
            uow,
            store,
            PartitionPricing(store, store, ledger, tables, calendar, clock, outbox, shown),
            self._reports,
            self._payouts,
            auditor,
            clock,
            tables,
            options,
            outbox,
            shown,
            work,
        )
        self._queries = SettlementQueries(uow, store)

    # --- dates -----------------------------------------------------------------------------------

    def cutoff_for(self, business_date: date) -> datetime:
        return self._runs.cutoff_for(business_date)

    def today(self) -> date:
        return self._runs.today()

    # --- the run ---------------------------------------------------------------------------------

    async def start(
        self,
        actor: Principal,
        origin: Origin,
        business_date: date,
        *,
        cutoff_at: datetime | None = None,
    ) -> tuple[SettlementRun, bool]:
        """Create the run for `business_date`, or join the one that exists if `cutoff_at` is
        None or that run's cutoff (another cutoff: InvalidState, 409)."""
        return await self._runs.start(actor, origin, business_date, cutoff_at=cutoff_at)

    async def run_for_date(self, business_date: date) -> SettlementRun | None:
        return await self._runs.run_for_date(business_date)

    async def pending_partitions(self, run_id: str) -> list[int]:
        return await self._runs.pending_partitions(run_id)

    async def run_partition(self, run_id: str, partition: int) -> int:
        """Settle one partition in one transaction; returns its item count (0 if already done)."""
        return await self._runs.run_partition(run_id, partition)

    async def finalize(self, run_id: str) -> SettlementRun:
        """After every partition: missing reports, payout files, invariants, completion."""
        return await self._runs.finalize(run_id)

    async def complete(self, run_id: str, progress: Progress | None = None) -> SettlementRun:
        """Work through the run's pending partitions in this process, then finalize it."""
        return await self._runs.complete(run_id, progress)

    async def settle(
        self,
        actor: Principal,
        origin: Origin,
        business_date: date,
        *,
        cutoff_at: datetime | None = None,
        progress: Progress | None = None,
    ) -> SettlementRun:
        """Start (or join) the run and work through its partitions in this process."""
        return await self._runs.settle(
            actor, origin, business_date, cutoff_at=cutoff_at, progress=progress
        )

    # --- payouts ---------------------------------------------------------------------------------

    async def write_payout_files(
        self, on: date, created_at: datetime, sent_on: date
    ) -> list[dict[str, Any]]:
        """Put every pending payout due by the effective date of a file sent on `sent_on` into
        business date `on`'s file per currency; the files written, as the run's stats list
        them."""
        files = await self._payouts.write_payout_files(on, created_at, sent_on)
        return [f.summary() for f in files]

    async def mark_payout(
        self,
        actor: Principal,
        origin: Origin,
        payout_id: str,
        status: str,
        failure_code: str | None = None,
    ) -> Payout:
        """Operator: a payout was `paid` (out of payouts in transit), or `failed` (an ACH
        return): its money back to available, paid again by the next settlement."""
        return await self._payouts.mark_payout(actor, origin, payout_id, status, failure_code)

    async def import_returns(self, actor: Principal, origin: Origin, data: bytes) -> ReturnsImport:
        """A NACHA return file: its returned payouts become failed, with their R-codes."""
        return await self._payouts.import_returns(actor, origin, data)

    # --- reads -----------------------------------------------------------------------------------

    async def download_payout_file(
        self, actor: Principal, origin: Origin, file_id: str
    ) -> tuple[PayoutFile, bytes]:
        return await self._payouts.download_payout_file(actor, origin, file_id)

    async def list_runs(
        self, actor: Principal, page: PageRequest
    ) -> tuple[Page[RunProgress], list[PayoutFile]]:
        return await self._queries.list_runs(actor, page)

    async def get_run(self, actor: Principal, run_id: str) -> SettlementRun:
        return await self._queries.get_run(actor, run_id)

    async def get_settlement(self, actor: Principal, settlement_id: str) -> Settlement:
        return await self._queries.get_settlement(actor, settlement_id)

    async def list_settlements(self, actor: Principal, page: PageRequest) -> Page[Settlement]:
        return await self._queries.list_settlements(actor, page)

    async def list_items(
        self, actor: Principal, settlement_id: str, page: PageRequest
    ) -> Page[ItemLine]:
        return await self._queries.list_items(actor, settlement_id, page)

    async def get_payout(self, actor: Principal, payout_id: str) -> Payout:
        return await self._queries.get_payout(actor, payout_id)

    async def list_payouts(
        self, actor: Principal, page: PageRequest, status: str | None = None
    ) -> Page[Payout]:
        return await self._queries.list_payouts(actor, page, status)
