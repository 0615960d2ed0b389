"""Import and match: the file COPYed into the run's UNLOGGED scratch tables, the matching run
per hash partition on as many connections, and the run's results recorded in its transaction.

Nothing here walks rows in Python: the only per-row work outside the server is the slow path
for a file whose values COPY refuses (its rows are read once, the loadable ones streamed to the
same COPY, the others reported by line number).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from clearport.core.ids import new_id
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.reconciliation.formats import (
    COMMON_COLUMNS,
    FileFormat,
    FileRefused,
    check_header,
    split_loadable,
)
from clearport.reconciliation.ports import Staged as StagedPort
from clearport.reconciliation.store.files import (
    SLOW_PATH_ROWS,
    Scratch,
    Staged,
    byte_ranges,
    read_range,
    typed,
    utc,
)
from clearport.reconciliation.store.sql import (
    CURRENCY_CODES,
    EXCEPTION_COLUMNS,
    ID_BODY,
    STAGE_VIEW_COLUMNS,
    capture_key_sql,
    match_sql,
    stage_columns_sql,
)


@dataclass(frozen=True, slots=True)
class MatchTotals:
    counts: dict[str, int]
    matched_late: int
    rejected: int


class PgMatching:
    """The import and the matching of one run (its state is the scratch tables)."""

    def __init__(self, *, statement_timeout_s: float, work_mem: str, lookback_days: int) -> None:
        self._timeout_s = statement_timeout_s
        self._work_mem = work_mem
        self._lookback = timedelta(days=lookback_days)

    # --- import and match -----------------------------------------------------------------
    #
    # A run's scratch tables (`rcs_…`) are UNLOGGED and committed (so both of the run's matching
    # connections see them), named after the connector and the run, and dropped when the run
    # ends; a crashed run's are dropped by the connector's next run, which holds its lock.

    def scratch(self, connector: str, run_id: str, fmt: FileFormat) -> Scratch:
        tag = hashlib.sha256(connector.encode()).hexdigest()[:8]
        return Scratch(f"rcs_{tag}", run_id.lower(), fmt.reference_kind)

    async def drop_scratch(self, tx: Transaction, scratch: Any, *, every: bool = False) -> None:
        """Drop the run's scratch tables (`every`: those of every run of the connector)."""
        conn = conn_of(tx)
        pattern = scratch.prefix + "\\_" + ("%" if every else scratch.run + "%")
        for name, relkind in await conn.fetch(
            "SELECT relname, relkind::text FROM pg_class WHERE relname LIKE $1 "
            "AND relkind IN ('v', 'r', 'S') AND pg_table_is_visible(oid) ORDER BY relkind DESC",
            pattern,
        ):
            kind = {"S": "SEQUENCE", "v": "VIEW"}.get(relkind, "TABLE")
            await conn.execute(f'DROP {kind} IF EXISTS "{name}"')

    async def stage(
        self, txs: Sequence[Transaction], scratch: Any, fmt: FileFormat, path: Path
    ) -> Staged:
        """COPY the file into the run's staging tables, one byte range of it per connection at
        once (autocommit: the matching connections read them), seen as one view; report its
        rows and the settlement dates it covers. Rows are checked by the matching."""
        with path.open(encoding="utf-8", errors="replace", newline="") as f:
            first = f.readline()
        check_header(fmt, first)
        conns = [conn_of(tx) for tx in txs]
        ranges = byte_ranges(path, len(conns))
        await conns[0].execute(
            f"CREATE UNLOGGED TABLE {scratch.rejected} (line_number bigint, reason text)"
        )
        for part in range(len(conns)):
            await conns[0].execute(f"CREATE SEQUENCE {scratch.line}{part} CACHE 10000")
            await conns[0].execute(
                f"CREATE UNLOGGED TABLE {scratch.stage}{part} "
                f"({stage_columns_sql(scratch.line + str(part))}) "
                "WITH (autovacuum_enabled = false)"
            )
        columns = ["reference", *COMMON_COLUMNS]
        outcomes = await asyncio.gather(
            *(
                conn.copy_to_table(
                    f"{scratch.stage}{part}",
                    source=read_range(path, start, end),
                    columns=columns,
                    format="csv",
                    timeout=self._timeout_s,
                )
                for part, (conn, (start, end)) in enumerate(zip(conns, ranges, strict=True))
            ),
            return_exceptions=True,
        )
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if not failed:
            # Each part numbered its rows from 1: its lines follow the header and the parts
            # before it.
            counts = [int(str(o).rsplit(" ", 1)[-1]) for o in outcomes]
            offsets = [1 + sum(counts[:part]) for part in range(len(counts))]
        elif all(isinstance(o, asyncpg.exceptions.DataError) for o in failed):
            # A value COPY refuses, or a row of other columns: which rows, and why, is read
            # once in Python; the loadable rows still go by COPY.
            for part in range(len(conns)):
                await conns[0].execute(f"TRUNCATE {scratch.stage}{part}")
            await self._stage_row_by_row(conns[0], scratch, columns, path)
            offsets = [0] * len(conns)  # the slow path gives each row its line number
        else:
            raise failed[0]
        parts = " UNION ALL ".join(
            f"SELECT {STAGE_VIEW_COLUMNS}, line_number + {offset} AS line_number "
            f"FROM {scratch.stage}{part}"
            for part, offset in enumerate(offsets)
        )
        await conns[0].execute(f"CREATE VIEW {scratch.stage} AS {parts}")
        for part in range(len(conns)):
            await conns[0].execute(f"ANALYZE {scratch.stage}{part}")
        row = await conns[0].fetchrow(
            f"SELECT count(*) AS n, min(settlement_date) AS first, max(settlement_date) AS last "
            f"FROM {scratch.stage}",
            timeout=self._timeout_s,
        )
        if row is None:  # pragma: no cover - an aggregate always answers one row
            raise RuntimeError("no row from an aggregate")
        refused = int(await conns[0].fetchval(f"SELECT count(*) FROM {scratch.rejected}"))
        first_day: date | None = row["first"]
        last_day: date | None = row["last"]
        return Staged(
            lines=int(row["n"]) + refused,
            rejected=refused,
            period=None
            if first_day is None or last_day is None
            else (first_day, last_day + timedelta(days=1)),
        )

    async def _stage_row_by_row(
        self, conn: asyncpg.Connection, scratch: Any, columns: list[str], path: Path
    ) -> None:
        """The slow path, for a file with a value COPY refuses: read once, the loadable rows
        streamed to COPY in bounded batches, the others reported by line number."""
        batch: list[tuple[Any, ...]] = []
        refused: list[tuple[int, str]] = []
        with path.open(encoding="utf-8", errors="replace", newline="") as f:
            f.readline()
            for number, parsed in split_loadable(f):
                if isinstance(parsed, list):
                    batch.append(typed(parsed, number))
                else:
                    refused.append((number, parsed.reason))
                if len(batch) >= SLOW_PATH_ROWS:
                    await self._copy_batch(conn, f"{scratch.stage}0", columns, batch)
                    batch = []
                if len(refused) >= SLOW_PATH_ROWS:
                    await self._refuse(conn, scratch, refused)
                    refused = []
        if batch:
            await self._copy_batch(conn, f"{scratch.stage}0", columns, batch)
        if refused:
            await self._refuse(conn, scratch, refused)

    async def _refuse(
        self, conn: asyncpg.Connection, scratch: Any, refused: list[tuple[int, str]]
    ) -> None:
        await conn.copy_records_to_table(
            scratch.rejected, records=refused, columns=["line_number", "reason"]
        )

    async def _copy_batch(
        self, conn: asyncpg.Connection, stage: str, columns: list[str], batch: list[tuple[Any, ...]]
    ) -> None:
        await conn.copy_records_to_table(
            stage, records=batch, columns=[*columns, "line_number"], timeout=self._timeout_s
        )

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

    async def create_results(self, tx: Transaction, scratch: Any) -> None:
        await conn_of(tx).execute(
            f"""CREATE UNLOGGED TABLE {scratch.results} (
                h1 bigint, item_type text, reference text, line_count bigint,
                line_number bigint, item_count bigint, item_id text, internal_amount bigint,
                internal_currency integer, external_amount bigint, external_currency integer,
                external_fee bigint, expected_fee bigint, settlement_date date,
                occurred_at timestamptz, disputed_reference text, reason text, kind text)"""
        )

    async def match_part(
        self,
        tx: Transaction,
        scratch: Any,
        fmt: FileFormat,
        connector: str,
        period: tuple[date, date],
        part: int,
        parts: int,
    ) -> None:
        """One of `parts` hash partitions of the matching: each is a connection of its own, so
        the grouping runs on as many cores."""
        conn = conn_of(tx)
        await conn.execute(f"SET work_mem = '{self._work_mem}'")
        # The planner cannot see how few rows a partition's filter keeps of each side's scan
        # (its estimate is a fraction of a percent), and would sort them all to group them:
        # grouping by hashing is what the statement is written for.
        await conn.execute("SET enable_sort = off")
        try:
            start = utc(period[0])
            await conn.execute(
                match_sql(fmt, scratch.stage, scratch.results),
                connector,
                start - self._lookback,
                utc(period[1]),
                start,
                await conn.fetchval(
                    "SELECT range_agg(tstzrange(period_start::timestamp AT TIME ZONE 'UTC', "
                    "period_end::timestamp AT TIME ZONE 'UTC')) FROM reconciliation_runs "
                    "WHERE connector = $1",
                    connector,
                ),
                part,
                parts,
                timeout=self._timeout_s,
            )
        finally:
            await conn.execute("RESET work_mem; RESET enable_sort")

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
                       reconciliation_masked(coalesce(r.disputed_reference, r.reference, i.key)),
                       CASE WHEN r.item_type = 'dispute'
                            THEN reconciliation_masked(coalesce(r.reference, i.key)) END,
                       r.line_number, r.line_count, r.item_type, r.item_id, i.merchant_id,
                       coalesce(i.currency, cur.currency),
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
                  LEFT JOIN LATERAL (
                        SELECT p.merchant_id, {capture_key_sql(scratch.reference_kind)} AS key,
                               p.currency
                          FROM payments p WHERE r.item_type = 'capture' AND p.id = r.item_id
                        UNION ALL
                        SELECT a.merchant_id, a.id, a.currency FROM payment_attempts a
                         WHERE r.item_type = 'refund' AND a.refund_id = r.item_id
                           AND a.operation = 'refund' AND a.status = 'succeeded'
                        UNION ALL
                        SELECT d.merchant_id, d.network_case_id, d.currency FROM disputes d
                         WHERE r.item_type = 'dispute' AND d.id = r.item_id
                        LIMIT 1) AS i ON true
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
