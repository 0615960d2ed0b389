"""What the reconciliation use cases need; `store.ReconciliationStore` is the PostgreSQL one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.reconciliation.domain import (
    ReconciliationException,
    ReconciliationRun,
    RejectedLine,
    Resolution,
)
from clearport.reconciliation.formats import FileFormat


class Staged(Protocol):
    @property
    def lines(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def period(self) -> tuple[date, date] | None: ...


class Totals(Protocol):
    @property
    def counts(self) -> dict[str, int]: ...
    @property
    def matched_late(self) -> int: ...
    @property
    def rejected(self) -> int: ...


class ReconciliationStore(Protocol):
    async def lock_connector(self, tx: Transaction, connector: str) -> None: ...
    async def connector_type(self, tx: Transaction, connector: str) -> str | None: ...
    async def run_for_file(
        self, tx: Transaction, connector: str, sha256: str
    ) -> ReconciliationRun | None: ...
    async def get_run(self, tx: Transaction, run_id: str) -> ReconciliationRun | None: ...
    async def list_runs(
        self, tx: Transaction, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[ReconciliationRun]: ...
    async def rejected_lines(
        self, tx: Transaction, run_id: str, limit: int
    ) -> list[RejectedLine]: ...
    def scratch(self, connector: str, run_id: str, fmt: FileFormat) -> Any: ...
    async def drop_scratch(self, tx: Transaction, scratch: Any, *, every: bool = False) -> None: ...
    async def stage(
        self, txs: Sequence[Transaction], scratch: Any, fmt: FileFormat, path: Path
    ) -> Staged: ...
    async def period_taken(
        self, tx: Transaction, connector: str, period: tuple[date, date]
    ) -> bool: ...
    async def match(
        self,
        txs: Sequence[Transaction],
        scratch: Any,
        fmt: FileFormat,
        connector: str,
        period: tuple[date, date],
        staged: Staged,
    ) -> dict[str, float]: ...
    async def drop_file(self, txs: Sequence[Transaction], scratch: Any) -> None: ...
    async def record(
        self,
        tx: Transaction,
        scratch: Any,
        *,
        run_id: str,
        connector: str,
        staged: Staged,
        now: datetime,
    ) -> Totals: ...
    async def insert_run(self, tx: Transaction, run: ReconciliationRun) -> None: ...
    async def get_exception(
        self, tx: Transaction, exception_id: str, *, lock: bool
    ) -> ReconciliationException | None: ...
    async def list_exceptions(
        self, tx: Transaction, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[ReconciliationException]: ...
    async def dispute_candidates(
        self, tx: Transaction, run_id: str, fmt: FileFormat, limit: int
    ) -> list[tuple[ReconciliationException, str | None]]: ...
    async def resolve(
        self,
        tx: Transaction,
        found: ReconciliationException,
        resolution: Resolution,
        *,
        note: str,
        actor: str,
        now: datetime,
        adjustment_id: str | None = None,
        balance_transaction: str | None = None,
    ) -> ReconciliationException: ...
    async def count_dispute_created(self, tx: Transaction, run_id: str) -> None: ...
    async def open_by_kind_and_age(
        self, tx: Transaction, now: datetime
    ) -> list[tuple[str, str, int]]: ...
    async def set_fee_schedule(
        self,
        tx: Transaction,
        connector: str,
        currency: str,
        percent_bps: int,
        fixed_minor: int,
        now: datetime,
    ) -> None: ...
