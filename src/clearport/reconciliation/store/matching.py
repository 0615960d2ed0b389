"""Matching: the two passes per run on as many connections (one per core), and the run's
results recorded in its transaction (docs/decisions/0711)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from clearport.core.ids import new_id
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.reconciliation.formats import FileFormat, FileRefused
from clearport.reconciliation.ports import Staged as StagedPort
from clearport.reconciliation.store.files import utc
from clearport.reconciliation.store.sql import (
    CURRENCY_CODES,
    EXCEPTION_COLUMNS,
    ID_BODY,
    RESULTS_COLUMNS_SQL,
    ROWS_COLUMNS_SQL,
    candidate_cells_sql,
    collect_earlier_items_sql,
    collect_items_sql,
    collect_lines_sql,
    fee_agreed_sql,
    match_sql,
    sketch_cells,
    sketch_sql,
)
from clearport.reconciliation.store.staging import PgStaging

# A heap block number past any table's end (block numbers are 32-bit).
_LAST_BLOCK = 2**32 - 1


async def _all(statements: Iterable[Awaitable[object]]) -> None:
    """Run these at once, each to its end, then raise the first failure: a connection still
    busy with its statement could take no ROLLBACK or RESET after another one failed."""
    outcomes = await asyncio.gather(*statements, return_exceptions=True)
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    if failed:
        raise failed[0]


@dataclass(frozen=True, slots=True)
class MatchTotals:
    counts: dict[str, int]
    matched_late: int
    rejected: int


class PgMatching(PgStaging):
    """The matching of one run, and its record."""

    async def period_taken(
        self, tx: Transaction, connector: str, period: tuple[date, date]
    ) -> bool:
        return bool(
            await conn_of(tx).fetchval(
                "SELECT EXISTS (SELECT 1 FROM reconciliation_runs WHERE connector = $1 "
                "AND daterange(period_start, period_end) && daterange($2, $3))",
                connector,
                *period,
            )
        )

    async def match(
        self,
        txs: Sequence[Transaction],
        scratch: Any,
        fmt: FileFormat,
        connector: str,
        period: tuple[date, date],
        staged: StagedPort,
    ) -> dict[str, float]:
        """Both passes, on these connections (autocommit, each its share at once):
        1. the sketch: each connection adds its share of the rows (its staged part, its blocks
           of the item tables, under one snapshot) into cells by transaction; the cells whose
           sums do not cancel hold every transaction that may be an exception (a thousandth of
           them, usually);
        2. those cells' rows in full (each connection its share again, under one snapshot;
           then the items before the period those rows name), grouped and classified as one
           statement into the run's results.
        Answers each pass's seconds."""
        conns = [conn_of(tx) for tx in txs]
        first = conns[0]
        await first.execute(
            f"CREATE UNLOGGED TABLE {scratch.sketch} (cell integer, lo bigint, hi bigint)"
        )
        await first.execute(f"CREATE UNLOGGED TABLE {scratch.candidates} (cell integer)")
        await first.execute(f"CREATE UNLOGGED TABLE {scratch.rows} ({ROWS_COLUMNS_SQL})")
        await first.execute(f"CREATE UNLOGGED TABLE {scratch.results} ({RESULTS_COLUMNS_SQL})")
        schedules = [
            (int(r[0]), int(r[1]), int(r[2]))
            for r in await first.fetch(
                "SELECT hashtextextended(currency, 0), percent_bps, fixed_minor "
                "FROM reconciliation_fee_schedules WHERE connector = $1 ORDER BY currency",
                connector,
            )
        ]
        start, end = utc(period[0]), utc(period[1])
        covered = await first.fetchval(
            "SELECT range_agg(tstzrange(period_start::timestamp AT TIME ZONE 'UTC', "
            "period_end::timestamp AT TIME ZONE 'UTC')) FROM reconciliation_runs "
            "WHERE connector = $1",
            connector,
        )
        cells = sketch_cells(staged.lines)
        fee_agreed = fee_agreed_sql(schedules)
        for conn in conns:
            # The sketch's cells fit in memory at this setting (~100 bytes each); the
            # connections are this run's parallelism, no workers on top.
            await conn.execute(
                f"SET work_mem = '{self._work_mem}'; SET max_parallel_workers_per_gather = 0"
            )
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        try:
            shares = await self._shares(conns)
            await self._in_one_snapshot(
                conns,
                lambda part, conn: conn.execute(
                    sketch_sql(fmt, scratch.stage_part(part), scratch.sketch, cells, fee_agreed),
                    connector,
                    start,
                    end,
                    *shares[part],
                    timeout=self._timeout_s,
                ),
            )
            await _all(
                conn.execute(
                    candidate_cells_sql(scratch.sketch, scratch.candidates, part, len(conns)),
                    timeout=self._timeout_s,
                )
                for part, conn in enumerate(conns)
            )
            seconds["match_sketch"] = round(time.perf_counter() - started, 3)
            started = time.perf_counter()
            await first.execute(f"ANALYZE {scratch.candidates}")

            async def collect(part: int, conn: asyncpg.Connection) -> None:
                # Compiling the file side's rules and reasons cost more than it saved on a
                # pass that keeps one row in forty (measured at 10 M: 1.14-1.22 s without JIT,
                # 1.25-1.36 s with it; the items' side is the same either way).
                await conn.execute("SET LOCAL jit = off")
                await conn.execute(
                    collect_lines_sql(
                        scratch.stage_part(part), scratch.candidates, scratch.rows, cells
                    ),
                    timeout=self._timeout_s,
                )
                await conn.execute(
                    collect_items_sql(fmt, scratch.candidates, scratch.rows, cells),
                    connector,
                    start,
                    end,
                    *shares[part],
                    timeout=self._timeout_s,
                )

            await self._in_one_snapshot(conns, collect)
            seconds["match_collect"] = round(time.perf_counter() - started, 3)
            await first.execute(
                collect_earlier_items_sql(fmt, scratch.rows),
                connector,
                start - self._lookback,
                start,
                timeout=self._timeout_s,
            )
            # Each connection classifies its part of the transactions: the grouping's hash
            # table (a few hundred thousand groups) was one core's work for ~0.7 s at 10 M.
            await _all(
                conn.execute(
                    match_sql(scratch.rows, scratch.results, part, len(conns)),
                    connector,
                    start,
                    covered,
                    timeout=self._timeout_s,
                )
                for part, conn in enumerate(conns)
            )
            # The record joins the results to the rows: the planner must know the results are
            # the small side (unanalyzed, it sorted the rows to disk for a merge join).
            await first.execute(f"ANALYZE {scratch.results}")
            seconds["match_close"] = round(time.perf_counter() - started, 3)
        finally:
            for conn in conns:
                await conn.execute("RESET work_mem; RESET max_parallel_workers_per_gather")
        return seconds

    async def drop_file(self, txs: Sequence[Transaction], scratch: Any) -> None:
        """The staged file and the sketch, once the close pass has read them (no later step
        does): each connection drops its own part, at once. The run's transaction records its
        results meanwhile; dropping a part frees ~650 MB at 10 M, a few tenths of a second
        that used to follow the run."""
        conns = [conn_of(tx) for tx in txs]
        # The file's view first, on one connection: two parts' CASCADEs would both reach it.
        await conns[0].execute(
            f"DROP VIEW IF EXISTS {scratch.stage}; "
            f"DROP TABLE IF EXISTS {scratch.sketch}, {scratch.candidates}"
        )
        await _all(
            conn.execute(f"DROP TABLE IF EXISTS {scratch.stage}{part} CASCADE")
            for part, conn in enumerate(conns)
        )

    async def _shares(self, conns: Sequence[asyncpg.Connection]) -> list[list[tuple[int, int]]]:
        """Each connection's share of the item tables' heap blocks: [low, high) per table, as
        tids, the last share reaching past the end."""
        row = await conns[0].fetchrow(
            "SELECT pg_relation_size('payments') / s, "
            "pg_relation_size('payment_attempts') / s, pg_relation_size('disputes') / s "
            "FROM (SELECT current_setting('block_size')::bigint AS s) AS b"
        )
        sizes = [int(v) for v in row] if row is not None else [0, 0, 0]
        parts = len(conns)
        shares = []
        for part in range(parts):
            share: list[tuple[int, int]] = []
            for blocks in sizes:
                share.append((blocks * part // parts, 0))
                last = part == parts - 1
                share.append((_LAST_BLOCK if last else blocks * (part + 1) // parts, 0))
            shares.append(share)
        return shares

    async def _in_one_snapshot(
        self,
        conns: Sequence[asyncpg.Connection],
        work: Callable[[int, asyncpg.Connection], Awaitable[object]],
    ) -> None:
        """`work(part, conn)` on every connection at once, all under the first one's snapshot
        (so that the rows an update moves between two shares of blocks are read exactly once),
        committed together."""
        first = conns[0]
        try:
            await first.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            snapshot = await first.fetchval("SELECT pg_export_snapshot()")
            for conn in conns[1:]:
                await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            await _all(work(part, conn) for part, conn in enumerate(conns))
        except Exception:
            for conn in conns:
                if conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
            raise
        for conn in conns:
            await conn.execute("COMMIT")

    async def record(
        self,
        tx: Transaction,
        scratch: Any,
        *,
        run_id: str,
        connector: str,
        staged: StagedPort,
        now: datetime,
    ) -> MatchTotals:
        """In the run's transaction: the exceptions, the rejected rows, late matches closed,
        and the counts."""
        conn = conn_of(tx)
        results = scratch.results
        # A few thousand rows, and a join with the close pass's rows: compiling the statements
        # took longer than running them at 10 M; the join hashes the results in memory.
        await conn.execute(f"SET LOCAL jit = off; SET LOCAL work_mem = '{self._work_mem}'")
        # A later file settles what an earlier run found missing: that exception closes.
        late = await conn.fetchval(
            f"""WITH late AS (
                    UPDATE reconciliation_exceptions x
                       SET status = 'resolved', resolution = 'matched_late', resolved_at = $3,
                           resolved_by = 'reconciliation', note = 'settled in run ' || $2
                      FROM {results} r
                     WHERE r.kind = 'seen_before' AND x.connector = $1 AND x.status = 'open'
                       AND x.kind = 'missing_external' AND x.item_id = r.item_id
                 RETURNING r.h1)
                , matched AS (UPDATE {results} r SET kind = 'matched_late' FROM late
                    WHERE r.h1 = late.h1 AND r.kind = 'seen_before')
                SELECT count(*) FROM late""",
            connector,
            run_id,
            now,
        )
        # What earlier runs settled already and this file settles again.
        await conn.execute(f"UPDATE {results} SET kind = 'duplicate' WHERE kind = 'seen_before'")
        await conn.execute(
            f"""INSERT INTO reconciliation_rejected_lines (run_id, line_number, reason)
                SELECT $1, line_number, reason FROM {scratch.rejected}
                UNION ALL SELECT $1, line_number, reason FROM {results} WHERE kind = 'rejected'""",
            run_id,
        )
        # difference: what the processor's figures mean for the merchant against what
        # Clearport credited it; a capture credits the merchant, a refund or dispute debits it.
        await conn.execute(
            f"""INSERT INTO reconciliation_exceptions ({EXCEPTION_COLUMNS})
                SELECT $4 || {ID_BODY}, $1, $2, r.kind, 'open', NULL,
                       reconciliation_masked(
                           coalesce(r.disputed_reference, r.reference, i.item_key)),
                       CASE WHEN r.item_type = 'dispute'
                            THEN reconciliation_masked(coalesce(r.reference, i.item_key)) END,
                       r.line_number, r.line_count, r.item_type, r.item_id, i.merchant_id,
                       coalesce(i.item_currency, cur.currency),
                       r.internal_amount, r.external_amount,
                       cur.currency,
                       r.external_fee, r.expected_fee,
                       CASE WHEN r.kind = 'currency_mismatch' THEN NULL
                            ELSE (CASE r.item_type WHEN 'capture' THEN 1 ELSE -1 END) * CASE r.kind
                            WHEN 'missing_external' THEN -r.internal_amount
                            WHEN 'missing_internal' THEN r.external_amount
                            WHEN 'amount_mismatch' THEN r.external_amount - r.internal_amount
                            WHEN 'fee_difference' THEN r.expected_fee - r.external_fee
                            WHEN 'duplicate' THEN
                                r.external_amount * (r.line_count - r.item_count
                                    + CASE WHEN r.line_count = 1 THEN 1 ELSE 0 END)
                            END END,
                       r.settlement_date, NULL, NULL, NULL, NULL, $3, NULL
                  FROM (SELECT row_number() OVER (ORDER BY item_type, h1) AS n, *
                          FROM {results} WHERE kind NOT IN ('matched_late', 'rejected')) AS r
                  -- The item a transaction's exception names, as the close pass read it (its
                  -- merchant, currency and reference came with it: no look-up per exception).
                  LEFT JOIN {scratch.rows} i ON i.item_id = r.item_id AND i.h1 = r.h1
                  LEFT JOIN ({CURRENCY_CODES}) AS cur ON cur.code = r.external_currency""",
            run_id,
            connector,
            now,
            new_id("rcx")[:14],
            secrets.randbits(59),
        )
        counts = {
            str(r["kind"]): int(r["n"])
            for r in await conn.fetch(f"SELECT kind, count(*) AS n FROM {results} GROUP BY kind")
        }
        counts.pop("matched_late", None)
        rejected = staged.rejected + counts.pop("rejected", 0)
        if staged.lines and rejected == staged.lines:
            # Not one row reads as the layout: the file is in another (a delimiter, a column
            # order of its own), refused whole, naming its first line.
            head = await conn.fetchrow(
                "SELECT line_number, reason FROM reconciliation_rejected_lines "
                "WHERE run_id = $1 ORDER BY line_number LIMIT 1",
                run_id,
            )
            if head is not None:
                raise FileRefused(int(head["line_number"]), str(head["reason"]))
        # Every row is in exactly one group: those not kept were clean matches (a late match
        # is one too).
        in_exceptions = int(
            await conn.fetchval(
                f"SELECT coalesce(sum(line_count), 0) FROM {results} "
                "WHERE kind NOT IN ('matched_late', 'rejected')"
            )
        )
        counts["matched"] = staged.lines - rejected - in_exceptions
        return MatchTotals(counts=counts, matched_late=int(late), rejected=rejected)
