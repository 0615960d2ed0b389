"""Settlement runs and their partitions in PostgreSQL: one run per date, its sources staged in one
pass (`settlement_sources`), partitions claimed and marked done, the end-of-run checks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from clearport.core.errors import invariant, present
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.statements import Params
from clearport.settlement.domain import PayoutFile, SettlementRun

# The pool's command timeout (60 s) suits requests; a night's statements over millions of rows
# (staging, pricing a partition, its report) get this bound instead.
LONG_S = 3_600.0


def partition_of(merchant_column: str, partitions: str) -> str:
    """The partition (a hash bucket of merchants) of a merchant id column, in SQL."""
    return f"(abs(hashtext({merchant_column})::bigint) % {partitions})"


def _stage_table(run_id: str) -> str:
    """The run's staging table, as stl_stage_tables names it, quoted."""
    return '"settlement_sources_' + run_id.lower().replace('"', '""') + '"'


def _stage_leaves(run_id: str, partitions: int) -> str:
    """The run's staging leaves (one per partition, as stl_stage_tables names them), quoted:
    what each partition's statement reads, so what needs statistics. ANALYZE of the parent
    would also sample every leaf again for the parent's own statistics, which no query uses
    (each reads one leaf)."""
    base = "settlement_sources_" + run_id.lower().replace('"', '""')
    return ", ".join(f'"{base}_{p}"' for p in range(partitions))


# A partition that staged sources whose rows are gone: a crash emptied the UNLOGGED staging.
_EMPTIED = (
    "p.staged > 0 AND NOT EXISTS (SELECT 1 FROM settlement_sources s "
    "WHERE s.run_id = p.run_id AND s.partition = p.partition)"
)
_LOST = f"SELECT {_EMPTIED} FROM settlement_partitions p WHERE run_id = $1 AND partition = $2"


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
    )


_insert_run = Params()
_INSERT_RUN = f"""
INSERT INTO settlement_runs (id, business_date, cutoff_at, lookback_from, partitions, status,
    created_by, created_at)
VALUES ({_insert_run("id")}, {_insert_run("business_date")}, {_insert_run("cutoff_at")},
    {_insert_run("lookback_from")}, {_insert_run("partitions")}, 'running',
    {_insert_run("created_by")}, {_insert_run("created_at")})
ON CONFLICT (business_date) DO NOTHING RETURNING *"""


# The run's sources: captures and refunds (credit / debit of the merchant's pending account);
# disputes that took from pending and the credits of disputes won, each its chargeback with its
# fee (`<source>:chargeback`, `<source>:fee`: what the dispute charged pending); adjustments,
# signed. Each is eligible once, before the cutoff and after the lookback, while no run has
# claimed it ({which}); restaging reads exactly the sources the run claimed. Each carries the
# card's interchange type and issuer country from the payment's BIN data (routing issue).
_CARD_TYPE = (
    "CASE WHEN p.card_category = 'commercial' THEN 'commercial' "
    "WHEN p.card_funding IS NOT NULL THEN 'consumer_' || p.card_funding END"
)


def _sources(p: Params, which: str) -> str:
    window = (
        f"t.action = 'post' AND t.created_at >= {p('lookback_from')} "
        f"AND t.created_at < {p('cutoff_at')} AND t.source IS NOT NULL AND {which}"
    )
    return f"""
SELECT {p("run_id")} AS run_id, {partition_of("x.merchant_id", p("partitions"))}
       AS partition, x.*
  FROM (
    SELECT t.source AS source_id, t.id AS transfer_id, t.code AS type, a.owner AS merchant_id,
           t.currency, t.amount, 0::bigint AS fee, t.created_at, p.id AS payment_id,
           p.card_brand AS brand, p.reference, {_CARD_TYPE} AS card_type,
           p.card_issuer_country AS issuer_country
      FROM ledger_transfers t
      JOIN ledger_accounts a ON a.id = CASE WHEN t.code = 'capture'
           THEN t.credit_account_id ELSE t.debit_account_id END
      LEFT JOIN refunds r ON t.code = 'refund' AND r.id = t.source
      LEFT JOIN payments p
             ON p.id = CASE WHEN t.code = 'capture' THEN t.source ELSE r.payment_id END
     WHERE t.code IN ('capture', 'refund') AND a.kind = 'pending' AND {window}
    UNION ALL
    SELECT t.source, t.id, 'dispute', a.owner, t.currency, t.amount, coalesce(f.amount, 0),
           t.created_at, p.id, p.card_brand, p.reference, {_CARD_TYPE}, p.card_issuer_country
      FROM ledger_transfers t
      JOIN ledger_accounts a ON a.id = t.debit_account_id
      JOIN disputes d ON d.id = t.source
      JOIN payments p ON p.id = d.payment_id
      LEFT JOIN ledger_transfers f ON f.id = t.source || ':fee'
     WHERE t.code = 'chargeback' AND t.id = t.source || ':chargeback' AND a.kind = 'pending'
       AND {window}
    UNION ALL
    SELECT t.source, t.id, 'dispute_reversal', a.owner, t.currency, t.amount,
           coalesce(f.amount, 0), t.created_at, p.id, p.card_brand, p.reference, {_CARD_TYPE},
           p.card_issuer_country
      FROM ledger_transfers t
      JOIN ledger_accounts a ON a.id = t.credit_account_id
      JOIN disputes d ON d.reversal_id = t.source
      JOIN payments p ON p.id = d.payment_id
      LEFT JOIN ledger_transfers f ON f.id = t.source || ':fee'
     WHERE t.code = 'chargeback' AND t.id = t.source || ':chargeback' AND a.kind = 'pending'
       AND {window}
    UNION ALL
    SELECT t.source, t.id, 'adjustment', a.owner, t.currency,
           CASE WHEN a.id = t.credit_account_id THEN t.amount ELSE -t.amount END, 0,
           t.created_at, NULL, NULL, NULL, NULL, NULL
      FROM ledger_transfers t
      JOIN ledger_accounts a ON a.id IN (t.debit_account_id, t.credit_account_id)
     WHERE t.code = 'adjustment' AND a.kind = 'pending' AND {window}
  ) x"""


_STAGED_COLUMNS = (
    "run_id, partition, source_id, transfer_id, type, merchant_id, currency, amount, fee, "
    "created_at, payment_id, brand, reference, card_type, issuer_country"
)
# A source's signed effect on its settlement (an item's gross).
_GROSS = (
    "CASE WHEN type IN ('capture', 'dispute_reversal', 'adjustment') THEN amount ELSE -amount END"
)
# ONE pass over the ledger: stage each source in its partition's UNLOGGED table, claim it for
# the run (the exactly-once guard: a source is claimed once, ever), and record each partition's
# count and gross durably for the end-of-run invariants. The claims and the counts read the
# staged rows' RETURNING (five narrow columns), not a materialized copy of the whole source
# rows read three times: at 10 M sources that copy spilled gigabytes (decision 0904).
_stage = Params()
_STAGE_SOURCES = f"""
WITH staged AS (
    INSERT INTO settlement_sources ({_STAGED_COLUMNS})
    SELECT {_STAGED_COLUMNS} FROM ({
    _sources(_stage, "NOT EXISTS (SELECT 1 FROM settlement_claims c WHERE c.source_id = t.source)")
}) s
    RETURNING source_id, partition, type, amount, payment_id
), claimed AS (
    INSERT INTO settlement_claims (source_id, run_id, partition)
    SELECT source_id, {_stage("run_id")}, partition FROM staged
)
UPDATE settlement_partitions p SET staged = x.n, staged_gross = x.gross
  FROM (SELECT partition, count(*) AS n, sum({_GROSS}) AS gross,
               count(*) FILTER (WHERE payment_id IS NULL AND type <> 'adjustment') AS orphans
          FROM staged GROUP BY partition) x
 WHERE p.run_id = {_stage("run_id")} AND p.partition = x.partition
RETURNING x.n, x.orphans"""

# After a crash emptied the UNLOGGED staging: the claimed sources of the given partitions again.
_restage = Params()
_RESTAGE_SOURCES = f"""
INSERT INTO settlement_sources ({_STAGED_COLUMNS})
SELECT {_STAGED_COLUMNS} FROM ({
    _sources(
        _restage,
        "EXISTS (SELECT 1 FROM settlement_claims c WHERE c.source_id = t.source "
        f"AND c.run_id = {_restage('run_id')} "
        f"AND c.partition = ANY({_restage('lost', 'int[]')}))",
    )
}) s"""

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
        return run_from_row(row)

    async def prepare_items_partition(self, tx: Transaction, business_date: date) -> None:
        await conn_of(tx).execute("SELECT stl_items_partition($1)", business_date)

    async def stage_sources(self, tx: Transaction, run: SettlementRun) -> SettlementRun:
        conn = conn_of(tx)
        await conn.execute("SELECT stl_stage_tables($1, $2)", run.id, run.partitions)
        # Room for the big hash joins of a night's volume (the default 4 MB spills to disk).
        await conn.execute("SET LOCAL work_mem = '256MB'")
        rows = await conn.fetch(
            _STAGE_SOURCES,
            *_stage.args(
                run_id=run.id,
                partitions=run.partitions,
                lookback_from=run.lookback_from,
                cutoff_at=run.cutoff_at,
            ),
            timeout=LONG_S,
        )
        orphans = sum(r["orphans"] for r in rows)
        invariant(not orphans, f"{orphans} staged sources have no payment")
        # Fresh statistics, so each partition's statement is planned with hash joins. A small
        # sample (3,000 rows a leaf, not 30,000) is enough for row counts and distinct values:
        # at 10 M sources the default sample took 24.7 s under load (bench/README.md).
        await conn.execute("SET LOCAL default_statistics_target = 10")
        await conn.execute(f"ANALYZE {_stage_leaves(run.id, run.partitions)}", timeout=LONG_S)
        await conn.execute("RESET default_statistics_target")
        await conn.execute(
            "UPDATE settlement_runs SET stats = jsonb_build_object('staged', $2::bigint) "
            "WHERE id = $1",
            run.id,
            sum(r["n"] for r in rows),
        )
        row = await conn.fetchrow("SELECT * FROM settlement_runs WHERE id = $1", run.id)
        return run_from_row(present(row, "the new run is visible"))

    async def restage_if_lost(self, tx: Transaction, run: SettlementRun, partition: int) -> int:
        conn = conn_of(tx)
        if not await conn.fetchval(_LOST, run.id, partition):
            return 0
        # One worker restages, for every partition still to settle: the others wait here,
        # then find their rows back.
        await conn.execute("SELECT 1 FROM settlement_runs WHERE id = $1 FOR UPDATE", run.id)
        lost = [
            r["partition"]
            for r in await conn.fetch(
                "SELECT partition FROM settlement_partitions p WHERE run_id = $1 "
                f"AND status = 'pending' AND {_EMPTIED}",
                run.id,
            )
        ]
        if not lost:
            return 0
        await conn.execute("SET LOCAL work_mem = '256MB'")
        await conn.execute(
            _RESTAGE_SOURCES,
            *_restage.args(
                run_id=run.id,
                partitions=run.partitions,
                lookback_from=run.lookback_from,
                cutoff_at=run.cutoff_at,
                lost=lost,
            ),
            timeout=LONG_S,
        )
        differ = await conn.fetchval(
            f"""SELECT count(*) FROM settlement_partitions p
                  LEFT JOIN (SELECT partition, count(*) AS n, sum({_GROSS}) AS gross
                               FROM settlement_sources WHERE run_id = $1 GROUP BY partition) x
                    ON x.partition = p.partition
                 WHERE p.run_id = $1 AND p.partition = ANY($2::int[])
                   AND (p.staged, p.staged_gross)
                       IS DISTINCT FROM (coalesce(x.n, 0), coalesce(x.gross, 0))""",
            run.id,
            lost,
            timeout=LONG_S,
        )
        invariant(not differ, f"{differ} partitions of {run.id} restaged differently")
        await conn.execute(f"ANALYZE {_stage_table(run.id)}", timeout=LONG_S)
        return len(lost)

    async def index_items(self, tx: Transaction, business_date: date) -> None:
        await conn_of(tx).execute("SELECT stl_index_items($1)", business_date, timeout=LONG_S)

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
        finished it (SKIP LOCKED: workers never queue behind each other)."""
        status = await conn_of(tx).fetchval(
            "SELECT status FROM settlement_partitions WHERE run_id = $1 AND partition = $2 "
            "FOR UPDATE SKIP LOCKED",
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
