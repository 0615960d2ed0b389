"""Reconciliation's runs: import a processor's settlement file and match it (one transaction:
all of the run or none of it), create the disputes it reports, read the runs, set the fee
schedules. The exception queue the runs fill is reconciliation/queue.py."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from collections.abc import Awaitable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from clearport.access.domain import Origin, Permission, Principal
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import InvalidRequest, InvalidState, NotFound
from clearport.core.ids import new_id
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction, UnitOfWork
from clearport.disputes.domain import DisputeReason
from clearport.disputes.service import DisputeService, NewDispute
from clearport.events.service import Outbox
from clearport.files.service import FileService
from clearport.reconciliation.domain import (
    ReconciliationRun,
    Resolution,
    run_shown,
)
from clearport.reconciliation.formats import FileFormat, format_for
from clearport.reconciliation.ports import ReconciliationStore

log = structlog.get_logger("clearport.reconciliation")

_DISPUTES_PER_BATCH = 100


# The digest is read in a thread while the command starts (cli/reconcile.py): between two
# blocks the thread waits for the GIL, up to the 5 ms switch interval while the main thread
# imports, so few large blocks (1 MiB ones took the hash of a 700 MB file from 0.4 s alone to
# 1.4 s beside the start-up).
_HASH_BLOCK_BYTES = 16 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_HASH_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


class _SameFile(Exception):
    """The file, once its digest was known, is one this connector reconciled already."""

    def __init__(self, run: ReconciliationRun) -> None:
        super().__init__(run.id)
        self.run = run


class _Laps:
    """Seconds per step of a run, for the benchmark's breakdown."""

    def __init__(self, into: dict[str, float]) -> None:
        self._into = into
        self._last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self._into[name] = round(now - self._last, 3)
        self._last = now

    def add(self, parts: Mapping[str, float]) -> None:
        """A step's parts, timed by the step itself."""
        self._into.update(parts)


class ReconciliationService:
    def __init__(
        self,
        uow: UnitOfWork,
        store: ReconciliationStore,
        disputes: DisputeService,
        files: FileService,
        outbox: Outbox,
        auditor: Auditor,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._store = store
        self._disputes = disputes
        self._files = files
        self._outbox = outbox
        self._auditor = auditor
        self._clock = clock

    async def reconcile(
        self,
        actor: Principal,
        origin: Origin,
        connector: str,
        path: Path,
        sha256: str | Awaitable[str],
        *,
        file_id: str | None = None,
    ) -> tuple[ReconciliationRun, bool, dict[str, float]]:
        """Import the file and match it; (the run, whether it is new, seconds per step). The
        same file again is the same run: nothing changes. `sha256` may still be being read
        (the command's thread): the file is then staged first and its digest checked before
        anything else, so hashing a large file overlaps the staging rather than preceding it;
        a file reconciled already then costs its staging, still changing nothing."""
        actor.require(Permission.FINANCE_WRITE)
        now = self._clock.now()
        steps: dict[str, float] = {}
        lap = _Laps(steps)
        scratches: list[Any] = []
        try:
            async with self._uow.transaction() as tx:
                await self._store.lock_connector(tx, connector)
                existing = (
                    await self._store.run_for_file(tx, connector, sha256)
                    if isinstance(sha256, str)
                    else None
                )
                if existing is None:
                    try:
                        run, fmt = await self._import_and_match(
                            tx, actor, origin, connector, path, sha256, file_id, now, lap, scratches
                        )
                    except _SameFile as same:
                        existing = same.run
        finally:
            # After the run's transaction: it read them, and a DROP would wait for it.
            for scratch in scratches:
                async with self._uow.autocommit() as work:
                    await self._store.drop_scratch(work, scratch)
        if existing is not None:
            # The same file: its run, unchanged; a crash after the run committed may have left
            # disputes to create, which this finishes.
            await self._create_disputes(
                actor, origin, existing, format_for(existing.connector_type)
            )
            return await self.get_run(actor, existing.id), False, {}
        # Chargebacks the processor reports that Clearport has not recorded: each becomes a
        # dispute (its own transaction, as an operator would create it), outside the run's.
        await self._create_disputes(actor, origin, run, fmt)
        return await self.get_run(actor, run.id), True, steps

    async def _import_and_match(
        self,
        tx: Transaction,
        actor: Principal,
        origin: Origin,
        connector: str,
        path: Path,
        sha256: str | Awaitable[str],
        file_id: str | None,
        now: datetime,
        lap: _Laps,
        scratches: list[Any],
    ) -> tuple[ReconciliationRun, FileFormat]:
        """In the run's transaction (holding the connector's lock): stage the file, match it on
        two connections, record the run, its audit record and its event."""
        connector_type = await self._store.connector_type(tx, connector)
        if connector_type is None:
            raise NotFound(f"No such connector: '{connector}'.", field="connector")
        fmt = format_for(connector_type)
        run_id = new_id("rc")
        scratch = self._store.scratch(connector, run_id, fmt)
        scratches.append(scratch)
        async with self._uow.autocommit() as work, self._uow.autocommit() as other:
            # A crashed run of this connector left its scratch: none is in use now.
            await self._store.drop_scratch(work, scratch, every=True)
            staged = await self._store.stage((work, other), scratch, fmt, path)
            lap("stage")
            if not isinstance(sha256, str):
                sha256 = await sha256
                same = await self._store.run_for_file(tx, connector, sha256)
                if same is not None:
                    raise _SameFile(same)
            period = staged.period or (now.date(), now.date() + timedelta(days=1))
            if await self._store.period_taken(tx, connector, period):
                raise InvalidState(
                    f"Connector {connector} is reconciled already for part of "
                    f"{period[0].isoformat()}.."
                    f"{(period[1] - timedelta(days=1)).isoformat()}: a corrected "
                    "file's differences are resolved in the exception queue.",
                    code="period_reconciled",
                )
            passes = await self._store.match((work, other), scratch, fmt, connector, period, staged)
            lap("match")
            lap.add(passes)
            # The run's transaction records the results while the matching connections drop
            # what only the passes read.
            recorded, dropped = await asyncio.gather(
                self._store.record(
                    tx, scratch, run_id=run_id, connector=connector, staged=staged, now=now
                ),
                self._store.drop_file((work, other), scratch),
                return_exceptions=True,
            )
            if isinstance(recorded, BaseException):
                raise recorded
            if isinstance(dropped, BaseException):
                # Only scratch the passes read: the run stands, and `drop_scratch` below drops
                # whatever is left (with every=True, a later run of the connector too).
                log.warning(
                    "reconciliation.scratch_not_dropped",
                    run_id=run_id,
                    error=type(dropped).__name__,
                )
            outcome = recorded
            lap("record")
        counts = outcome.counts
        run = ReconciliationRun(
            id=run_id,
            connector=connector,
            connector_type=connector_type,
            file_id=file_id,
            file_sha256=sha256,
            period_start=period[0],
            period_end=period[1],
            lines=staged.lines,
            rejected=outcome.rejected,
            matched=counts.get("matched", 0),
            missing_internal=counts.get("missing_internal", 0),
            missing_external=counts.get("missing_external", 0),
            amount_mismatch=counts.get("amount_mismatch", 0),
            currency_mismatch=counts.get("currency_mismatch", 0),
            fee_difference=counts.get("fee_difference", 0),
            duplicate=counts.get("duplicate", 0),
            matched_late=outcome.matched_late,
            disputes_created=0,
            created_by=actor.actor,
            created_at=now,
        )
        await self._store.insert_run(tx, run)
        await self._auditor.record(
            tx,
            actor=actor.actor,
            event_type="reconciliation_run.created",
            resource=run_id,
            origin=origin,
            details={"connector": connector, "sha256": sha256, "file": file_id},
        )
        # In the run's transaction: the event exists exactly when the run does. The
        # disputes the file creates next have their own `dispute.created` events.
        await self._outbox.emit(tx, "reconciliation.completed", run_shown(run), merchant_id=None)
        return run, fmt

    async def reconcile_file(
        self, actor: Principal, origin: Origin, connector: str, file_id: str
    ) -> tuple[ReconciliationRun, bool]:
        """`reconcile` of an uploaded file (purpose `reconciliation`). Its bytes are written to
        a private temporary file for COPY to stream (uploads are at most a few megabytes)."""
        stored, data = await self._files.reconciliation_file(actor, file_id)
        with tempfile.TemporaryDirectory(prefix="clearport-reconcile-") as directory:
            path = Path(directory) / "settlement.csv"
            path.write_bytes(data)
            run, created, _ = await self.reconcile(
                actor, origin, connector, path, stored.sha256, file_id=file_id
            )
        return run, created

    async def list_runs(
        self, actor: Principal, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[ReconciliationRun]:
        """Filters: connector, created_gte, created_lt."""
        actor.require(Permission.FINANCE_READ)
        async with self._uow.autocommit() as tx:
            return await self._store.list_runs(tx, page, filters)

    async def _create_disputes(
        self, actor: Principal, origin: Origin, run: ReconciliationRun, fmt: FileFormat
    ) -> int:
        created = 0
        seen: set[str] = set()
        while True:
            async with self._uow.autocommit() as tx:
                batch = await self._store.dispute_candidates(tx, run.id, fmt, _DISPUTES_PER_BATCH)
            batch = [(x, p) for x, p in batch if x.id not in seen]
            if not batch:
                return created
            for found, payment_id in batch:
                seen.add(found.id)
                if payment_id is None or found.external_amount is None:
                    continue  # the disputed transaction is unknown too: it stays open
                try:
                    dispute = await self._disputes.create(
                        actor,
                        origin,
                        NewDispute(
                            payment=payment_id,
                            amount=found.external_amount,
                            reason=DisputeReason.GENERAL,
                            network_case_id=found.network_case_id,
                        ),
                    )
                except (InvalidRequest, InvalidState, NotFound):
                    continue  # e.g. more than is left to dispute: finance decides
                async with self._uow.transaction() as tx:
                    locked = await self._store.get_exception(tx, found.id, lock=True)
                    if locked is None or locked.resolution is not None:
                        continue
                    await self._store.resolve(
                        tx,
                        locked,
                        Resolution.DISPUTE_CREATED,
                        note=f"dispute {dispute.id} created from the processor's file",
                        actor="reconciliation",
                        now=self._clock.now(),
                    )
                    await self._store.count_dispute_created(tx, run.id)
                created += 1

    async def get_run(self, actor: Principal, run_id: str) -> ReconciliationRun:
        actor.require(Permission.FINANCE_READ)
        async with self._uow.autocommit() as tx:
            found = await self._store.get_run(tx, run_id)
        if found is None:
            raise NotFound(f"No such reconciliation run: '{run_id}'.", field="id")
        return found

    async def rejected_lines(self, actor: Principal, run_id: str, limit: int = 100) -> list[Any]:
        actor.require(Permission.FINANCE_READ)
        async with self._uow.autocommit() as tx:
            return list(await self._store.rejected_lines(tx, run_id, limit))

    async def set_fee_schedule(
        self,
        actor: Principal,
        origin: Origin,
        connector: str,
        currency: str,
        percent_bps: int,
        fixed_minor: int,
    ) -> None:
        actor.require(Permission.FINANCE_WRITE)
        if not 0 <= percent_bps <= 10_000 or fixed_minor < 0:
            raise InvalidRequest("A fee schedule is 0..10000 bps and a fixed fee of at least 0.")
        async with self._uow.transaction() as tx:
            await self._store.set_fee_schedule(
                tx, connector, currency, percent_bps, fixed_minor, self._clock.now()
            )
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="reconciliation_fee_schedule.set",
                resource=connector,
                origin=origin,
                details={"currency": currency, "percent_bps": percent_bps, "fixed": fixed_minor},
            )
