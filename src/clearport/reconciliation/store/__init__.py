"""Reconciliation in PostgreSQL: runs, their rejected rows and the exception queue; the import
and the matching are `matching.PgMatching` (docs/decisions/0711)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import add_filters, fetch_page
from clearport.reconciliation.domain import (
    ExceptionKind,
    ExceptionStatus,
    ReconciliationException,
    ReconciliationRun,
    RejectedLine,
    Resolution,
)
from clearport.reconciliation.formats import FileFormat, ReferenceKind
from clearport.reconciliation.store.matching import PgMatching
from clearport.reconciliation.store.sql import EXCEPTION_COLUMNS, RUN_COLUMNS


def run_of(row: asyncpg.Record) -> ReconciliationRun:
    return ReconciliationRun(**dict(row))


def exception_of(row: Any) -> ReconciliationException:
    values: dict[str, Any] = dict(row)
    values["kind"] = ExceptionKind(values["kind"])
    values["status"] = ExceptionStatus(values["status"])
    values["resolution"] = (
        None if values["resolution"] is None else Resolution(values["resolution"])
    )
    return ReconciliationException(**values)


class PgReconciliationStore(PgMatching):
    """The runs, their rejected rows and exceptions, and the matching itself."""

    # --- runs ---------------------------------------------------------------------------

    async def lock_connector(self, tx: Transaction, connector: str) -> None:
        """One run per connector at a time (a second waits, then sees the first's result)."""
        await conn_of(tx).execute(
            "SELECT pg_advisory_xact_lock(hashtext('reconciliation:' || $1))", connector
        )

    async def connector_type(self, tx: Transaction, connector: str) -> str | None:
        found = await conn_of(tx).fetchval("SELECT type FROM connectors WHERE name = $1", connector)
        if found is None and connector == "simulator":
            return "simulator"  # the built-in connector every installation has
        return None if found is None else str(found)

    async def run_for_file(
        self, tx: Transaction, connector: str, sha256: str
    ) -> ReconciliationRun | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {RUN_COLUMNS} FROM reconciliation_runs "
            "WHERE connector = $1 AND file_sha256 = $2",
            connector,
            sha256,
        )
        return None if row is None else run_of(row)

    async def get_run(self, tx: Transaction, run_id: str) -> ReconciliationRun | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {RUN_COLUMNS} FROM reconciliation_runs WHERE id = $1", run_id
        )
        return None if row is None else run_of(row)

    async def list_runs(
        self, tx: Transaction, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[ReconciliationRun]:
        where: list[str] = []
        args: list[Any] = []
        add_filters(where, args, filters, equal={"connector": "connector"})
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {RUN_COLUMNS} FROM reconciliation_runs",
            where=where,
            args=args,
            page=page,
            row_to=run_of,
        )

    async def rejected_lines(self, tx: Transaction, run_id: str, limit: int) -> list[RejectedLine]:
        rows = await conn_of(tx).fetch(
            "SELECT line_number, reason FROM reconciliation_rejected_lines WHERE run_id = $1 "
            "ORDER BY line_number LIMIT $2",
            run_id,
            limit,
        )
        return [RejectedLine(r["line_number"], r["reason"]) for r in rows]

    async def insert_run(self, tx: Transaction, run: ReconciliationRun) -> None:
        values = [getattr(run, name.strip()) for name in RUN_COLUMNS.split(",")]
        placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        await conn_of(tx).execute(
            f"INSERT INTO reconciliation_runs ({RUN_COLUMNS}) VALUES ({placeholders})", *values
        )

    # --- exceptions -----------------------------------------------------------------------

    async def get_exception(
        self, tx: Transaction, exception_id: str, *, lock: bool
    ) -> ReconciliationException | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {EXCEPTION_COLUMNS} FROM reconciliation_exceptions WHERE id = $1"
            + (" FOR UPDATE" if lock else ""),
            exception_id,
        )
        return None if row is None else exception_of(row)

    async def list_exceptions(
        self, tx: Transaction, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[ReconciliationException]:
        where: list[str] = []
        args: list[Any] = []
        add_filters(
            where, args, filters, equal={"run": "run_id", "kind": "kind", "status": "status"}
        )
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {EXCEPTION_COLUMNS} FROM reconciliation_exceptions",
            where=where,
            args=args,
            page=page,
            row_to=exception_of,
        )

    async def dispute_candidates(
        self, tx: Transaction, run_id: str, fmt: FileFormat, limit: int
    ) -> list[tuple[ReconciliationException, str | None]]:
        """Open missing_internal disputes of the run, each with the payment it names."""
        key = (
            "p.network_reference"
            if fmt.reference_kind is ReferenceKind.NETWORK_REFERENCE
            else "p.auth_attempt_id"
        )
        rows = await conn_of(tx).fetch(
            f"""SELECT x.*, (SELECT p.id FROM payments p WHERE p.connector = x.connector
                                AND {key} = x.reference LIMIT 1) AS payment_id
                  FROM (SELECT {EXCEPTION_COLUMNS} FROM reconciliation_exceptions
                         WHERE run_id = $1 AND kind = 'missing_internal'
                           AND item_type = 'dispute' AND status = 'open'
                         ORDER BY id LIMIT $2) AS x""",
            run_id,
            limit,
        )
        out = []
        for row in rows:
            values = dict(row)
            payment = values.pop("payment_id")
            out.append((exception_of(values), payment))
        return out

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
    ) -> ReconciliationException:
        row = await conn_of(tx).fetchrow(
            f"""UPDATE reconciliation_exceptions SET status = 'resolved', resolution = $2,
                       note = $3, resolved_by = $4, resolved_at = $5, adjustment_id = $6,
                       balance_transaction = $7
                 WHERE id = $1 AND status = 'open' RETURNING {EXCEPTION_COLUMNS}""",
            found.id,
            str(resolution),
            note,
            actor,
            now,
            adjustment_id,
            balance_transaction,
        )
        if row is None:  # pragma: no cover - the caller holds the row lock
            raise RuntimeError("an open exception changed under its lock")
        return exception_of(row)

    async def count_dispute_created(self, tx: Transaction, run_id: str) -> None:
        await conn_of(tx).execute(
            "UPDATE reconciliation_runs SET disputes_created = disputes_created + 1, "
            "missing_internal = missing_internal - 1 WHERE id = $1",
            run_id,
        )

    async def open_by_kind_and_age(
        self, tx: Transaction, now: datetime
    ) -> list[tuple[str, str, int]]:
        """Open exceptions by kind and age bucket, for /metrics."""
        rows = await conn_of(tx).fetch(
            """SELECT kind, CASE WHEN created_at > $1::timestamptz - interval '1 day' THEN '0-1d'
                                 WHEN created_at > $1::timestamptz - interval '7 days' THEN '1-7d'
                                 WHEN created_at > $1::timestamptz - interval '30 days' THEN '7-30d'
                                 ELSE '30d+' END AS age, count(*) AS n
                 FROM reconciliation_exceptions WHERE status = 'open' GROUP BY 1, 2""",
            now,
        )
        return [(r["kind"], r["age"], int(r["n"])) for r in rows]

    async def set_fee_schedule(
        self,
        tx: Transaction,
        connector: str,
        currency: str,
        percent_bps: int,
        fixed_minor: int,
        now: datetime,
    ) -> None:
        await conn_of(tx).execute(
            """INSERT INTO reconciliation_fee_schedules
                   (connector, currency, percent_bps, fixed_minor, updated_at)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (connector, currency) DO UPDATE SET percent_bps = $3,
                   fixed_minor = $4, updated_at = $5""",
            connector,
            currency,
            percent_bps,
            fixed_minor,
            now,
        )
