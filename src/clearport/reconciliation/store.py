"""Reconciliation in PostgreSQL: a file COPYed into an UNLOGGED staging table made for its run
(created, used and dropped inside the run's one transaction), then one set-based pass that
groups the file's rows and Clearport's items by transaction and keeps only what does not match.

Nothing here walks rows in Python: the only per-row work outside the server is the slow path
for a file whose values COPY refuses (its rows are read once, the loadable ones streamed to the
same COPY, the others reported by line number).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from clearport.core.ids import new_id
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
from clearport.reconciliation.formats import (
    COMMON_COLUMNS,
    FileFormat,
    FileRefused,
    ReferenceKind,
    check_header,
    split_loadable,
)
from clearport.reconciliation.ports import Staged as StagedPort

_READ_BYTES = 1 << 20  # COPY reads the file in blocks of this size
_SLOW_PATH_ROWS = 20_000  # rows per COPY batch on the slow path: bounds its memory

_RUN_COLUMNS = (
    "id, connector, connector_type, file_id, file_sha256, period_start, period_end, lines, "
    "rejected, matched, missing_internal, missing_external, amount_mismatch, currency_mismatch, "
    "fee_difference, duplicate, matched_late, disputes_created, created_by, created_at"
)
_EXCEPTION_COLUMNS = (
    "id, run_id, connector, kind, status, resolution, reference, network_case_id, line_number, "
    "line_count, "
    "item_type, item_id, merchant_id, currency, internal_amount, external_amount, "
    "external_currency, external_fee, expected_fee, difference, settlement_date, note, "
    "adjustment_id, balance_transaction, resolved_by, created_at, resolved_at"
)

# Exception ids like core.ids.new_id, made in SQL for rows that never pass through Python: the
# run's prefix and time (`$4`), then 16 Crockford characters of a random offset (`$5`) plus the
# row's number, so they are unique and in creation order.
_ID_BODY = """(SELECT string_agg(substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ',
        (((r.n + $5::bigint) >> (5 * (15 - i))) & 31)::int + 1, 1), '' ORDER BY i)
        FROM generate_series(0, 15) AS i)"""


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


@dataclass(frozen=True, slots=True)
class Scratch:
    """The scratch tables of one run."""

    prefix: str
    run: str
    reference_kind: ReferenceKind = ReferenceKind.ATTEMPT_ID

    @property
    def stage(self) -> str:
        return f"{self.prefix}_{self.run}_stage"

    @property
    def line(self) -> str:
        return f"{self.prefix}_{self.run}_line"

    @property
    def rejected(self) -> str:
        return f"{self.prefix}_{self.run}_rejected"

    @property
    def results(self) -> str:
        return f"{self.prefix}_{self.run}_results"


@dataclass(frozen=True, slots=True)
class Staged:
    lines: int  # rows after the header
    rejected: int
    period: tuple[date, date] | None  # [first settlement date, last + 1 day); None: no rows


@dataclass(frozen=True, slots=True)
class MatchTotals:
    counts: dict[str, int]
    matched_late: int
    rejected: int


def _run(row: asyncpg.Record) -> ReconciliationRun:
    return ReconciliationRun(**dict(row))


def _exception(row: Any) -> ReconciliationException:
    values: dict[str, Any] = dict(row)
    values["kind"] = ExceptionKind(values["kind"])
    values["status"] = ExceptionStatus(values["status"])
    values["resolution"] = (
        None if values["resolution"] is None else Resolution(values["resolution"])
    )
    return ReconciliationException(**values)


# Transactions are grouped by a 64-bit hash of (type, reference), not by the text: grouping 10 M
# fixed-width keys is several times cheaper than grouping strings, and a second, independent
# 64-bit hash of each row travels with it so that a group whose rows are not one transaction (a
# collision of the first hash) never looks clean: it is kept for a person to see, as a duplicate.
_H1 = "hashtextextended({key}, {seed})"
_H2 = "hashtextextended({key}, {seed} + 1000)"
_TYPE_SEED = "CASE {type} WHEN 'capture' THEN 1 WHEN 'refund' THEN 2 ELSE 3 END"
# What makes a row loadable but not acceptable: evaluated once per row as one boolean, and only
# for the (few) rows that fail it, the reason.
_LINE_VALID = """(reference IS NOT NULL AND length(reference) <= 64
    AND type IN ('capture', 'refund', 'dispute') AND amount_minor > 0
    AND currency ~ '^[A-Za-z]{3}$'
    AND interchange_minor >= 0 AND scheme_fee_minor >= 0 AND processor_fee_minor >= 0
    AND fee_minor = interchange_minor + scheme_fee_minor + processor_fee_minor
    AND settlement_date IS NOT NULL
    AND (type = 'dispute') = (dispute_case_id IS NOT NULL)
    AND coalesce(length(dispute_case_id), 0) <= 64)"""
_LINE_REASON = """CASE
    WHEN reference IS NULL OR length(reference) > 64
        THEN 'reference is required, at most 64 characters'
    WHEN type IS NULL OR type NOT IN ('capture', 'refund', 'dispute')
        THEN 'type must be capture, refund or dispute'
    WHEN amount_minor IS NULL OR amount_minor <= 0 THEN 'amount_minor must be positive'
    WHEN currency IS NULL OR currency !~ '^[A-Za-z]{3}$'
        THEN 'currency must be a three-letter ISO 4217 code'
    WHEN fee_minor IS NULL OR interchange_minor IS NULL OR scheme_fee_minor IS NULL
         OR processor_fee_minor IS NULL OR interchange_minor < 0 OR scheme_fee_minor < 0
         OR processor_fee_minor < 0
        THEN 'fees are required and not negative'
    WHEN fee_minor <> interchange_minor + scheme_fee_minor + processor_fee_minor
        THEN 'fee_minor must be interchange_minor + scheme_fee_minor + processor_fee_minor'
    WHEN settlement_date IS NULL THEN 'settlement_date is required'
    WHEN (type = 'dispute') <> (dispute_case_id IS NOT NULL)
        THEN 'dispute_case_id is given for disputes, and only for them'
    ELSE 'dispute_case_id is at most 64 characters' END"""


def _hashes(key: str, type_: str) -> tuple[str, str]:
    seed = _TYPE_SEED.format(type=type_)
    return _H1.format(key=key, seed=seed), _H2.format(key=key, seed=seed)


def _capture_key_sql(kind: ReferenceKind) -> str:
    return "p.network_reference" if kind is ReferenceKind.NETWORK_REFERENCE else "p.auth_attempt_id"


def _items_sql(fmt: FileFormat, part: str) -> str:
    """Clearport's side: one row per capture, successful refund and chargeback of the connector
    between the look-back start ($2) and the period's end ($3), of this partition."""
    capture_key = _capture_key_sql(fmt.reference_kind)
    sides = []
    for item_type, table, key, item_id, amount, at, where in (
        ("capture", "payments p", capture_key, "p.id", "p.amount_captured", "p.captured_at",
         "p.connector = $1 AND p.amount_captured > 0"),
        ("refund", "payment_attempts p", "p.id", "p.refund_id", "p.amount", "p.completed_at",
         "p.operation = 'refund' AND p.status = 'succeeded' AND p.connector = $1"),
        ("dispute", "disputes p", "p.network_case_id", "p.id", "p.amount", "p.created_at",
         "p.connector = $1 AND NOT p.inquiry AND p.network_case_id IS NOT NULL"),
    ):  # fmt: skip
        h1, h2 = _hashes(key, f"'{item_type}'")
        sides.append(f"""
SELECT h1, false AS bad, h2, NULL::bigint AS line_number,
       {_TYPE_SEED.format(type=repr(item_type))} AS item_type,
       NULL::text AS reference,
       item_id, amount AS internal_amount, currency AS internal_currency,
       NULL::bigint AS external_amount, NULL::text AS external_currency,
       NULL::bigint AS external_fee, NULL::date AS settlement_date, at AS occurred_at,
       NULL::text AS disputed_reference, NULL::text AS reason
  FROM (SELECT {h1} AS h1, {h2} AS h2, {item_id} AS item_id, {amount} AS amount,
               p.currency, {at} AS at
          FROM {table}
         WHERE {where} AND {at} >= $2 AND {at} < $3) AS i
 WHERE {part}""")
    return "\nUNION ALL".join(sides)


def _lines_sql(stage: str) -> str:
    """The file's rows of this partition ($6 of $7, by the first hash of the transaction; a row
    without one by its line number); a row whose values break a rule is a group of its own
    (`bad`, keyed by its line number) that says why. The partition is chosen on the hash alone,
    so the rules and the second hash are computed only for the partition's own rows."""
    key = "CASE WHEN type = 'dispute' THEN dispute_case_id ELSE reference END"
    h1, h2 = _hashes(key, "type")
    return f"""
SELECT CASE WHEN reason IS NULL THEN hash ELSE line_number END AS h1, reason IS NOT NULL AS bad,
       h2, line_number, item_type, reference, NULL::text AS item_id,
       NULL::bigint AS internal_amount, NULL::text AS internal_currency,
       amount_minor AS external_amount, currency AS external_currency,
       fee_minor AS external_fee, settlement_date, NULL::timestamptz AS occurred_at,
       disputed_reference, reason
  FROM (SELECT hash, {h2} AS h2, {_TYPE_SEED.format(type="type")} AS item_type,
               {key} AS reference,
               CASE WHEN type = 'dispute' THEN reference END AS disputed_reference,
               CASE WHEN {_LINE_VALID} THEN NULL ELSE {_LINE_REASON} END AS reason,
               line_number, amount_minor, currency, fee_minor, settlement_date
          FROM (SELECT {h1} AS hash, s.* FROM {stage} s OFFSET 0) AS hashed
         WHERE (coalesce(hash, line_number) & 1023) % $7 = $6) AS l"""


def _match_sql(fmt: FileFormat, stage: str, results: str) -> str:
    """One partition ($6 of $7) of the one pass: group both sides by transaction; keep each
    group that is not a clean match (one row, one item, same currency, amount and agreed fee,
    never settled by an earlier run) and, of Clearport's unmatched items, those of the period
    ($4 on). $5: the periods earlier runs of the connector covered."""
    part = "(h1 & 1023) % $7 = $6"
    return f"""
INSERT INTO {results}
SELECT g.h1, (ARRAY['capture', 'refund', 'dispute'])[g.item_type], g.reference, g.line_count,
       g.line_number, g.item_count, g.item_id,
       g.internal_amount, g.internal_currency, g.external_amount, lower(g.external_currency),
       g.external_fee, f.expected_fee, g.settlement_date, g.occurred_at, g.disputed_reference,
       g.reason,
       CASE WHEN g.bad THEN 'rejected'
            WHEN g.line_count = 0 THEN 'missing_external'
            WHEN g.item_count = 0 THEN 'missing_internal'
            WHEN g.line_count > 1 OR g.h2_min <> g.h2_max THEN 'duplicate'
            WHEN lower(g.external_currency) <> g.internal_currency THEN 'currency_mismatch'
            WHEN g.external_amount <> g.internal_amount THEN 'amount_mismatch'
            WHEN g.external_fee <> f.expected_fee THEN 'fee_difference'
            ELSE 'seen_before' END
  FROM (SELECT u.h1, u.bad, min(u.reason) AS reason, min(u.h2) AS h2_min,
               max(u.h2) AS h2_max, min(u.item_type) AS item_type,
               count(u.line_number) AS line_count, min(u.line_number) AS line_number,
               count(u.item_id) AS item_count, min(u.item_id) AS item_id,
               min(u.reference) AS reference, min(u.internal_amount) AS internal_amount,
               min(u.internal_currency) AS internal_currency,
               min(u.external_amount) AS external_amount,
               min(u.external_currency) AS external_currency,
               min(u.external_fee) AS external_fee, min(u.settlement_date) AS settlement_date,
               min(u.occurred_at) AS occurred_at,
               min(u.disputed_reference) AS disputed_reference
          FROM ({_lines_sql(stage)}
                UNION ALL {_items_sql(fmt, part)}) AS u
         GROUP BY u.h1, u.bad) AS g
  LEFT JOIN reconciliation_fee_schedules f0 ON f0.connector = $1
       AND f0.currency = lower(g.external_currency)
  LEFT JOIN LATERAL (SELECT (g.external_amount * f0.percent_bps + 5000) / 10000 + f0.fixed_minor
                     AS expected_fee) AS f ON true
 WHERE g.bad OR (g.line_count = 0 AND g.occurred_at >= $4)
    OR (g.line_count > 0 AND NOT (g.line_count = 1 AND g.item_count = 1
        AND g.h2_min = g.h2_max
        AND lower(g.external_currency) = g.internal_currency
        AND g.external_amount = g.internal_amount
        AND g.external_fee = coalesce(f.expected_fee, g.external_fee)
        AND (g.occurred_at >= $4 OR NOT coalesce($5::tstzmultirange @> g.occurred_at, false))))
"""


class PgReconciliationStore:
    """The runs, their rejected rows and exceptions, and the matching itself."""

    def __init__(self, *, statement_timeout_s: float, work_mem: str, lookback_days: int) -> None:
        self._timeout_s = statement_timeout_s
        self._work_mem = work_mem
        self._lookback = timedelta(days=lookback_days)

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
            f"SELECT {_RUN_COLUMNS} FROM reconciliation_runs "
            "WHERE connector = $1 AND file_sha256 = $2",
            connector,
            sha256,
        )
        return None if row is None else _run(row)

    async def get_run(self, tx: Transaction, run_id: str) -> ReconciliationRun | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {_RUN_COLUMNS} FROM reconciliation_runs WHERE id = $1", run_id
        )
        return None if row is None else _run(row)

    async def list_runs(self, tx: Transaction, page: PageRequest) -> Page[ReconciliationRun]:
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {_RUN_COLUMNS} FROM reconciliation_runs",
            where=[],
            args=[],
            page=page,
            row_to=_run,
        )

    async def rejected_lines(self, tx: Transaction, run_id: str, limit: int) -> list[RejectedLine]:
        rows = await conn_of(tx).fetch(
            "SELECT line_number, reason FROM reconciliation_rejected_lines WHERE run_id = $1 "
            "ORDER BY line_number LIMIT $2",
            run_id,
            limit,
        )
        return [RejectedLine(r["line_number"], r["reason"]) for r in rows]

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
        ranges = _byte_ranges(path, len(conns))
        await conns[0].execute(
            f"CREATE UNLOGGED TABLE {scratch.rejected} (line_number bigint, reason text)"
        )
        for part in range(len(conns)):
            await conns[0].execute(f"CREATE SEQUENCE {scratch.line}{part} CACHE 10000")
            await conns[0].execute(
                f"""CREATE UNLOGGED TABLE {scratch.stage}{part} (
                    reference text, type text, amount_minor bigint, currency text,
                    fee_minor bigint, interchange_minor bigint, scheme_fee_minor bigint,
                    processor_fee_minor bigint, settlement_date date, dispute_case_id text,
                    line_number bigint NOT NULL DEFAULT nextval('{scratch.line}{part}'))
                    WITH (autovacuum_enabled = false)"""
            )
        columns = ["reference", *COMMON_COLUMNS]
        outcomes = await asyncio.gather(
            *(
                conn.copy_to_table(
                    f"{scratch.stage}{part}",
                    source=_read_range(path, start, end),
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
            f"SELECT reference, type, amount_minor, currency, fee_minor, interchange_minor, "
            f"scheme_fee_minor, processor_fee_minor, settlement_date, dispute_case_id, "
            f"line_number + {offset} AS line_number FROM {scratch.stage}{part}"
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
                    batch.append(_typed(parsed, number))
                else:
                    refused.append((number, parsed.reason))
                if len(batch) >= _SLOW_PATH_ROWS:
                    await self._copy_batch(conn, f"{scratch.stage}0", columns, batch)
                    batch = []
                if len(refused) >= _SLOW_PATH_ROWS:
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
                internal_currency text, external_amount bigint, external_currency text,
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
        try:
            start = _utc(period[0])
            await conn.execute(
                _match_sql(fmt, scratch.stage, scratch.results),
                connector,
                start - self._lookback,
                _utc(period[1]),
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
            await conn.execute("RESET work_mem")

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
            f"""INSERT INTO reconciliation_exceptions ({_EXCEPTION_COLUMNS})
                SELECT $4 || {_ID_BODY}, $1, $2, r.kind, 'open', NULL,
                       reconciliation_masked(coalesce(r.disputed_reference, r.reference, i.key)),
                       CASE WHEN r.item_type = 'dispute'
                            THEN reconciliation_masked(coalesce(r.reference, i.key)) END,
                       r.line_number, r.line_count, r.item_type, r.item_id, i.merchant_id,
                       coalesce(r.internal_currency, r.external_currency),
                       r.internal_amount, r.external_amount, r.external_currency,
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
                        SELECT p.merchant_id, {_capture_key_sql(scratch.reference_kind)} AS key
                          FROM payments p WHERE r.item_type = 'capture' AND p.id = r.item_id
                        UNION ALL
                        SELECT a.merchant_id, a.id FROM payment_attempts a
                         WHERE r.item_type = 'refund' AND a.refund_id = r.item_id
                           AND a.operation = 'refund' AND a.status = 'succeeded'
                        UNION ALL
                        SELECT d.merchant_id, d.network_case_id FROM disputes d
                         WHERE r.item_type = 'dispute' AND d.id = r.item_id
                        LIMIT 1) AS i ON true""",
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

    async def insert_run(self, tx: Transaction, run: ReconciliationRun) -> None:
        values = [getattr(run, name.strip()) for name in _RUN_COLUMNS.split(",")]
        placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        await conn_of(tx).execute(
            f"INSERT INTO reconciliation_runs ({_RUN_COLUMNS}) VALUES ({placeholders})", *values
        )

    # --- exceptions -----------------------------------------------------------------------

    async def get_exception(
        self, tx: Transaction, exception_id: str, *, lock: bool
    ) -> ReconciliationException | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {_EXCEPTION_COLUMNS} FROM reconciliation_exceptions WHERE id = $1"
            + (" FOR UPDATE" if lock else ""),
            exception_id,
        )
        return None if row is None else _exception(row)

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
            select=f"SELECT {_EXCEPTION_COLUMNS} FROM reconciliation_exceptions",
            where=where,
            args=args,
            page=page,
            row_to=_exception,
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
                  FROM (SELECT {_EXCEPTION_COLUMNS} FROM reconciliation_exceptions
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
            out.append((_exception(values), payment))
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
                 WHERE id = $1 AND status = 'open' RETURNING {_EXCEPTION_COLUMNS}""",
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
        return _exception(row)

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


def _byte_ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """`parts` byte ranges of the file after its header, each ending at a line's end."""
    size = path.stat().st_size
    with path.open("rb") as f:
        start = len(f.readline())
        bounds = [start]
        for part in range(1, parts):
            f.seek(max(bounds[-1], start + (size - start) * part // parts))
            if f.tell() > start:
                f.readline()  # to the end of the line the cut fell in
            bounds.append(max(bounds[-1], f.tell()))
    bounds.append(size)
    return list(itertools.pairwise(bounds))


async def _read_range(path: Path, start: int, end: int) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            chunk = f.read(min(_READ_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def _typed(fields: list[str], number: int) -> tuple[Any, ...]:
    def integer(value: str) -> int:
        return int(value)

    return (
        fields[0] or None,
        fields[1] or None,
        integer(fields[2]),
        fields[3] or None,
        integer(fields[4]),
        integer(fields[5]),
        integer(fields[6]),
        integer(fields[7]),
        date.fromisoformat(fields[8]),
        fields[9] or None,
        number,
    )
