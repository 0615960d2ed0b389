"""Settlement runs and their partitions in PostgreSQL: one run per date, partitions claimed and
marked done, the end-of-run checks. Staging the run's sources is staging.py's."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from clearport.core.errors import present
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.statements import Params
from clearport.settlement.domain import PayoutFile, SettlementRun

# The pool's command timeout (60 s) suits requests; a night's statements over millions of rows
# (staging, pricing a partition, its report) get this bound instead.
LONG_S = 3_600.0
# Server memory for sorting a night's items into their index: ~110 bytes an item, so 1 GB
# holds ~9 M items in memory (a larger night merges the rest from temporary files).
INDEX_SORT_MEMORY = "1GB"


def partition_of(merchant_column: str, partitions: str) -> str:
    """The partition (a hash bucket of merchants) of a merchant id column, in SQL."""
    return f"(abs(hashtext({merchant_column})::bigint) % {partitions})"


def run_from_row(row: asyncpg.Record) -> SettlementRun:
    return SettlementRun(
        id=row["id"],
        business_date=row["business_date"],
        cutoff_at=row["cutoff_at"],
        lookback_from=row["lookback_from"],
        partitions=row["partitions"],
        status=row["status"],
        error=row["error"],
        stats=json.loads(row["stats"]) if isinstance(row["stats"], str) else dict(row["stats"]),
        created_at=row["created_at"],
        completed_at=row["completed_at"],
        stage_shares=row["stage_shares"],
        staged_at=row["staged_at"],
    )


_insert_run = Params()
_INSERT_RUN = f"""
INSERT INTO settlement_runs (id, business_date, cutoff_at, lookback_from, partitions, status,
    created_by, created_at, stage_shares)
VALUES ({_insert_run("id")}, {_insert_run("business_date")}, {_insert_run("cutoff_at")},
    {_insert_run("lookback_from")}, {_insert_run("partitions")}, 'running',
    {_insert_run("created_by")}, {_insert_run("created_at")}, {_insert_run("stage_shares")})
ON CONFLICT (business_date) DO NOTHING RETURNING *"""


# A run's staging shares: its window cut at fixed times, so that each share's statement is
# planned with the true size of its slice of the ledger (a hash of the source id was estimated
# at 0.5 % of the rows and planned with nested loops, decision 0914). Cut evenly between the
# first and the last capture since the latest earlier run's cutoff (before it, the sources are
# that run's: a night's captures, not the claimed days of the lookback, are what is shared;
# two probes of the (code, created_at) index); the first share still starts at the window's
# start and the last ends at the cutoff, so the shares cover the window exactly.
_INSERT_STAGE_SHARES = """
WITH since AS (
    SELECT greatest($3::timestamptz, max(cutoff_at)) AS at
      FROM settlement_runs WHERE cutoff_at < $4::timestamptz AND id <> $1
), span AS (
    SELECT coalesce(min(t.created_at), $3::timestamptz) AS lo,
           coalesce(max(t.created_at), $4::timestamptz) AS hi
      FROM ledger_transfers t, since
     WHERE t.code = 'capture' AND t.created_at >= since.at AND t.created_at < $4::timestamptz
), cut AS (
    SELECT g, CASE WHEN g = 0 THEN $3::timestamptz ELSE lo + (hi - lo) * g / $2::int END AS from_at
      FROM span, generate_series(0, $2::int - 1) g
)
INSERT INTO settlement_stage_shares (run_id, share, from_at, to_at)
SELECT $1, g, from_at, coalesce(lead(from_at) OVER (ORDER BY g), $4::timestamptz) FROM cut"""


_finish = Params()
_FINISH_RUN = f"""
UPDATE settlement_runs SET status = {_finish("status")}, stats = stats || {_finish("stats")}::jsonb,
       error = {_finish("error")}, completed_at = {_finish("completed_at")}
 WHERE id = {_finish("id")}"""

_done = Params()
_MARK_PARTITION_DONE = f"""
UPDATE settlement_partitions SET status = 'done', items = {_done("items")},
       settlements = {_done("settlements")}, done_at = {_done("done_at")}
 WHERE run_id = {_done("run_id")} AND partition = {_done("partition")} AND status = 'pending'"""


class PgRunStore:
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
        conn = conn_of(tx)
        row = await conn.fetchrow(
            _INSERT_RUN,
            *_insert_run.args(
                id=run_id,
                business_date=business_date,
                cutoff_at=cutoff_at,
                lookback_from=lookback_from,
                partitions=partitions,
                created_by=created_by,
                created_at=now,
                stage_shares=stage_shares,
            ),
        )
        if row is None:
            return None
        await conn.execute(
            """INSERT INTO settlement_partitions (run_id, partition, status)
               SELECT $1, g, 'pending' FROM generate_series(0, $2 - 1) g""",
            run_id,
            partitions,
        )
        # The shares to stage, and the staging tables, created here in a short transaction:
        # creating a partition of settlement_sources locks it, which no share may hold long.
        await conn.execute(_INSERT_STAGE_SHARES, run_id, stage_shares, lookback_from, cutoff_at)
        await conn.execute("SELECT stl_stage_tables($1, $2)", run_id, partitions)
        return run_from_row(row)

    async def prepare_items_partition(self, tx: Transaction, business_date: date) -> None:
        await conn_of(tx).execute("SELECT stl_items_partition($1)", business_date)

    async def index_items(self, tx: Transaction, business_date: date) -> None:
        conn = conn_of(tx)
        # The index is one sort of the night's items: in memory rather than merged from
        # temporary files (the default 64 MB holds ~600 k items' keys; decision 0906), by
        # PostgreSQL's parallel workers (1 M items on 2 cores: 1.58-2.18 s with two against
        # 2.97-3.65 s without, decision 0914), each with a third of the memory.
        await conn.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_SORT_MEMORY}'")
        await conn.execute("SET LOCAL max_parallel_maintenance_workers = 2")
        await conn.execute("SELECT stl_index_items($1)", business_date, timeout=LONG_S)

    async def get_run(self, tx: Transaction, run_id: str) -> SettlementRun | None:
        row = await conn_of(tx).fetchrow("SELECT * FROM settlement_runs WHERE id = $1", run_id)
        return None if row is None else run_from_row(row)

    async def get_run_by_date(self, tx: Transaction, business_date: date) -> SettlementRun | None:
        row = await conn_of(tx).fetchrow(
            "SELECT * FROM settlement_runs WHERE business_date = $1", business_date
        )
        return None if row is None else run_from_row(row)

    async def first_source_at(self, tx: Transaction) -> datetime | None:
        # One probe of the (code, created_at) index per kind rather than one scan.
        value: datetime | None = await conn_of(tx).fetchval(
            "SELECT least("
            "(SELECT min(created_at) FROM ledger_transfers WHERE code = 'capture'), "
            "(SELECT min(created_at) FROM ledger_transfers WHERE code = 'refund'), "
            "(SELECT min(created_at) FROM ledger_transfers WHERE code = 'chargeback'), "
            "(SELECT min(created_at) FROM ledger_transfers WHERE code = 'adjustment'))"
        )
        return value

    async def pending_partitions(self, tx: Transaction, run_id: str) -> list[int]:
        rows = await conn_of(tx).fetch(
            "SELECT partition FROM settlement_partitions WHERE run_id = $1 AND status = 'pending' "
            "ORDER BY partition",
            run_id,
        )
        return [r["partition"] for r in rows]

    async def claim_partition(self, tx: Transaction, run_id: str, partition: int) -> bool:
        """Lock the partition row for this transaction; False if another worker has it or
        finished it (SKIP LOCKED: workers never queue behind each other), or if the run's
        staging is not finished."""
        status = await conn_of(tx).fetchval(
            "SELECT p.status FROM settlement_partitions p WHERE p.run_id = $1 "
            "AND p.partition = $2 AND EXISTS (SELECT 1 FROM settlement_runs r "
            "WHERE r.id = p.run_id AND r.staged_at IS NOT NULL) "
            "FOR UPDATE OF p SKIP LOCKED",
            run_id,
            partition,
        )
        return bool(status == "pending")

    async def mark_partition_done(
        self,
        tx: Transaction,
        run_id: str,
        partition: int,
        items: int,
        settlements: int,
        now: datetime,
    ) -> None:
        await conn_of(tx).execute(
            _MARK_PARTITION_DONE,
            *_done.args(
                run_id=run_id,
                partition=partition,
                items=items,
                settlements=settlements,
                done_at=now,
            ),
        )

    async def partitions_without_report(self, tx: Transaction, run_id: str) -> list[int]:
        rows = await conn_of(tx).fetch(
            "SELECT DISTINCT partition FROM settlements WHERE run_id = $1 AND report IS NULL "
            "ORDER BY partition",
            run_id,
        )
        return [r["partition"] for r in rows]

    async def fail_run(
        self, tx: Transaction, run_id: str, violations: Sequence[str], now: datetime
    ) -> None:
        await self._finish(
            tx, run_id, "failed", {"violations": list(violations)}, "; ".join(violations), now
        )

    async def complete_run(
        self, tx: Transaction, run_id: str, payout_files: Sequence[PayoutFile], now: datetime
    ) -> None:
        stats = {"payout_files": [f.summary() for f in payout_files], "violations": []}
        await self._finish(tx, run_id, "completed", stats, None, now)
        # The staged rows served their purpose (the invariants held): dropped whole.
        await conn_of(tx).execute("SELECT stl_drop_stage($1)", run_id)

    async def _finish(
        self,
        tx: Transaction,
        run_id: str,
        status: str,
        stats: dict[str, Any],
        error: str | None,
        now: datetime,
    ) -> None:
        await conn_of(tx).execute(
            _FINISH_RUN,
            *_finish.args(id=run_id, status=status, stats=stats, error=error, completed_at=now),
        )

    async def run_invariants(self, tx: Transaction, run: SettlementRun) -> list[str]:
        """End-of-run checks in SQL; returns the violations (empty when all hold)."""
        conn = conn_of(tx)
        problems: list[str] = []
        # One backend: PostgreSQL's parallel workers did not make this GROUP BY faster on 2
        # cores (1 M items: 1.11-2.30 s with two against 1.02-1.82 s without), and finalize
        # runs it beside the index build, which does use them (decision 0914).
        await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        # One pass over the date's items (its partition, whole): each settlement's sums, and
        # the run's count and gross against what its partitions staged (recorded durably).
        checked = await conn.fetchrow(
            """WITH i AS (
                   SELECT settlement_id, count(*) n, sum(gross) total,
                          coalesce(sum(gross) FILTER (WHERE type = 'capture'), 0) g,
                          coalesce(-sum(gross) FILTER (WHERE type = 'refund'), 0) r,
                          coalesce(-sum(gross) FILTER (
                              WHERE type IN ('dispute', 'dispute_reversal')), 0) d,
                          coalesce(sum(gross) FILTER (WHERE type = 'adjustment'), 0) a,
                          coalesce(sum(commission) FILTER (
                              WHERE type IN ('dispute', 'dispute_reversal')), 0) df,
                          sum(commission) f
                     FROM settlement_items WHERE business_date = $2 GROUP BY settlement_id)
               SELECT (SELECT coalesce(sum(staged), 0) FROM settlement_partitions
                        WHERE run_id = $1) AS staged,
                      (SELECT coalesce(sum(staged_gross), 0) FROM settlement_partitions
                        WHERE run_id = $1) AS staged_total,
                      coalesce(sum(i.n), 0) AS n, coalesce(sum(i.total), 0) AS total,
                      count(*) FILTER (WHERE s.id IS NULL) AS strays,
                      count(*) FILTER (WHERE s.id IS NOT NULL
                          AND (coalesce(i.n, 0), coalesce(i.g, 0), coalesce(i.r, 0),
                               coalesce(i.d, 0), coalesce(i.a, 0), coalesce(i.f, 0),
                               coalesce(i.df, 0))
                          IS DISTINCT FROM (s.count, s.gross, s.refunds, s.disputes,
                                            s.adjustments, s.fees, s.dispute_fees)) AS mismatch
                 FROM (SELECT * FROM settlements WHERE run_id = $1) s
                 FULL JOIN i ON i.settlement_id = s.id""",
            run.id,
            run.business_date,
            timeout=LONG_S,
        )
        checked = present(checked, "aggregates return one row")
        if (checked["staged"], checked["staged_total"]) != (checked["n"], checked["total"]):
            problems.append(
                f"items {checked['n']}/{checked['total']} != eligible sources "
                f"{checked['staged']}/{checked['staged_total']}"
            )
        if checked["strays"]:
            problems.append(f"{checked['strays']} settlements of items are not the run's")
        if checked["mismatch"]:
            problems.append(f"{checked['mismatch']} settlements differ from the sum of their items")
        unbalanced = await conn.fetch(
            """SELECT currency, sum(debits_posted) - sum(credits_posted) AS diff
                 FROM ledger_accounts GROUP BY currency
               HAVING sum(debits_posted) <> sum(credits_posted)""",
            timeout=LONG_S,
        )
        for row in unbalanced:
            problems.append(f"ledger not zero-sum in {row['currency']}: {row['diff']}")
        payout_mismatch = await conn.fetchval(
            """SELECT count(*) FROM settlements s LEFT JOIN payouts p ON p.settlement_id = s.id
                WHERE s.run_id = $1 AND coalesce(p.amount, 0) <> s.payout""",
            run.id,
            timeout=LONG_S,
        )
        if payout_mismatch:
            problems.append(f"{payout_mismatch} settlements whose payout differs")
        return problems
