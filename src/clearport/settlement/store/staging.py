"""A run's sources in PostgreSQL: claimed and staged when the run starts, in shares that
several connections stage at once, one pass over the ledger each (`settlement_claims`, the
UNLOGGED `settlement_sources`, `settlement_share_counts`), summed up once every share is in; and
staged again from the claims when a crash emptied the staging (decisions 0900, 0904, 0906,
0914)."""

from __future__ import annotations

import asyncpg

from clearport.core.errors import invariant, present
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.statements import Params
from clearport.settlement.domain import SettlementRun
from clearport.settlement.store.runs import LONG_S, partition_of, run_from_row

# Server memory for staging's hash joins, x hash_mem_multiplier (2): the window's payments are
# hashed (~77 bytes a payment: 77 MB at 1 M, ~770 MB at 10 M), and a hash past the limit is
# split into batches written to temporary files and read back, both sides of the join
# (decision 0906). One backend, once a night.
STAGING_HASH_MEMORY = "512MB"


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


# A dispute's payment and the fee its chargeback charged, each looked up by its key: LIMIT 1
# keeps each a lateral subquery (one index probe per dispute) that the planner cannot turn into
# a join, so a share's `enable_nestloop = off` (see stage_share) cannot make it a hash join that
# reads all of `payments` and `ledger_transfers` for a few thousand disputes (at 1 M, 0.67 s of
# an 8 s share for 500 disputes; at 10 M, a scan of each table per branch and share). Both keys
# are primary keys, so LIMIT 1 drops nothing.
_PAYMENT_OF_DISPUTE = "SELECT * FROM payments p WHERE p.id = d.payment_id LIMIT 1"
_DISPUTE_FEE = "SELECT f.amount FROM ledger_transfers f WHERE f.id = t.source || ':fee' LIMIT 1"


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
      LEFT JOIN refunds r ON r.id = CASE WHEN t.code = 'refund' THEN t.source END
      LEFT JOIN payments p
             ON p.id = CASE WHEN t.code = 'capture' THEN t.source ELSE r.payment_id END
     WHERE t.code IN ('capture', 'refund') AND a.kind = 'pending' AND {window}
    UNION ALL
    SELECT t.source, t.id, 'dispute', a.owner, t.currency, t.amount, coalesce(f.amount, 0),
           t.created_at, p.id, p.card_brand, p.reference, {_CARD_TYPE}, p.card_issuer_country
      FROM ledger_transfers t
      JOIN ledger_accounts a ON a.id = t.debit_account_id
      JOIN disputes d ON d.id = t.source
      CROSS JOIN LATERAL ({_PAYMENT_OF_DISPUTE}) p
      LEFT JOIN LATERAL ({_DISPUTE_FEE}) f ON true
     WHERE t.code = 'chargeback' AND t.id = t.source || ':chargeback' AND a.kind = 'pending'
       AND {window}
    UNION ALL
    SELECT t.source, t.id, 'dispute_reversal', a.owner, t.currency, t.amount,
           coalesce(f.amount, 0), t.created_at, p.id, p.card_brand, p.reference, {_CARD_TYPE},
           p.card_issuer_country
      FROM ledger_transfers t
      JOIN ledger_accounts a ON a.id = t.credit_account_id
      JOIN disputes d ON d.reversal_id = t.source
      CROSS JOIN LATERAL ({_PAYMENT_OF_DISPUTE}) p
      LEFT JOIN LATERAL ({_DISPUTE_FEE}) f ON true
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


# ONE pass over the ledger per share (the sources created in its slice of the run's window,
# bound as `lookback_from` and `cutoff_at`): stage each source of the share in its partition's
# UNLOGGED table, claim it for the run (the exactly-once guard: a source is claimed once, ever),
# and record the share's count and gross per partition durably, summed at the end of staging
# for the end-of-run invariants. The claims and the counts read the staged rows' RETURNING
# (five narrow columns), not a materialized copy of the whole source rows read three times: at
# 10 M sources that copy spilled gigabytes (decision 0904).
_stage = Params()
_STAGE_SHARE = f"""
WITH staged AS (
    INSERT INTO settlement_sources ({_STAGED_COLUMNS})
    SELECT {_STAGED_COLUMNS} FROM ({
    _sources(_stage, "NOT EXISTS (SELECT 1 FROM settlement_claims c WHERE c.source_id = t.source)")
}) s
    RETURNING source_id, partition, type, amount, payment_id
), claimed AS (
    INSERT INTO settlement_claims (source_id, run_id, partition)
    SELECT source_id, {_stage("run_id")}, partition FROM staged
), counted AS (
    SELECT partition, count(*) AS staged, sum({_GROSS}) AS staged_gross,
           count(*) FILTER (WHERE payment_id IS NULL AND type <> 'adjustment') AS orphans
      FROM staged GROUP BY partition
), recorded AS (
    INSERT INTO settlement_share_counts (run_id, share, partition, staged, staged_gross)
    SELECT {_stage("run_id")}, {_stage("share")}, partition, staged, staged_gross FROM counted
)
SELECT staged, orphans FROM counted"""

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


class PgStagingStore:
    async def pending_stage_shares(self, tx: Transaction, run_id: str) -> list[int]:
        rows = await conn_of(tx).fetch(
            "SELECT share FROM settlement_stage_shares WHERE run_id = $1 AND done_at IS NULL "
            "ORDER BY share",
            run_id,
        )
        return [r["share"] for r in rows]

    async def stage_share(self, tx: Transaction, run: SettlementRun, share: int) -> bool:
        """Claim and stage one share of the run's sources, in this transaction; False if
        another worker has the share or staged it (SKIP LOCKED, like partitions)."""
        conn = conn_of(tx)
        slice_ = await conn.fetchrow(
            "SELECT from_at, to_at FROM settlement_stage_shares WHERE run_id = $1 AND share = $2 "
            "AND done_at IS NULL FOR UPDATE SKIP LOCKED",
            run.id,
            share,
        )
        if slice_ is None:
            return False
        # Room for the big hash joins of a night's volume (the default 4 MB spills to disk).
        await conn.execute(f"SET LOCAL work_mem = '{STAGING_HASH_MEMORY}'")
        # Hash joins only. With the claims' statistics saying "empty" (a first night, or stale)
        # the anti-join was planned as a nested loop that scans the whole claims table for
        # every source: nothing while the table is empty, but the shares staged beside this one
        # insert their claims meanwhile, and each of this share's sources then scanned all of
        # them (a 1 M night's share took 150 s instead of 5). A hash anti-join reads the claims
        # once. What it costs: the dispute branches (a few thousand rows) scan payments once
        # each instead of probing its key (decision 0914).
        await conn.execute("SET LOCAL enable_nestloop = off")
        rows = await conn.fetch(
            _STAGE_SHARE,
            *_stage.args(
                run_id=run.id,
                partitions=run.partitions,
                lookback_from=slice_["from_at"],
                cutoff_at=slice_["to_at"],
                share=share,
            ),
            timeout=LONG_S,
        )
        orphans = sum(r["orphans"] for r in rows)
        invariant(not orphans, f"{orphans} staged sources have no payment")
        # The server's start: a crash of PostgreSQL empties the UNLOGGED rows staged here, and
        # restarts it, so a share staged on a server that has restarted since is staged again.
        await conn.execute(
            "UPDATE settlement_stage_shares SET done_at = clock_timestamp(), "
            "server_started_at = pg_postmaster_start_time() WHERE run_id = $1 AND share = $2",
            run.id,
            share,
        )
        return True

    async def finish_staging(self, tx: Transaction, run: SettlementRun) -> SettlementRun:
        """Once every share is staged: each partition's count and gross, the staging's
        statistics, `staged_at`. Idempotent (under the run's row lock)."""
        conn = conn_of(tx)
        row = await conn.fetchrow("SELECT * FROM settlement_runs WHERE id = $1 FOR UPDATE", run.id)
        current = run_from_row(present(row, "the run exists"))
        if current.staged_at is not None:
            return current
        pending, restarted = present(
            await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE done_at IS NULL), count(*) FILTER "
                "(WHERE server_started_at IS DISTINCT FROM pg_postmaster_start_time()) "
                "FROM settlement_stage_shares WHERE run_id = $1",
                run.id,
            ),
            "aggregates return one row",
        )
        invariant(not pending, f"{pending} staging shares of {run.id} are not staged")
        staged = await conn.fetchval(
            """WITH x AS (SELECT partition, sum(staged) AS n, sum(staged_gross) AS gross
                            FROM settlement_share_counts WHERE run_id = $1 GROUP BY partition),
                    u AS (UPDATE settlement_partitions p SET staged = x.n, staged_gross = x.gross
                            FROM x WHERE p.run_id = $1 AND p.partition = x.partition)
               SELECT coalesce(sum(n), 0) FROM x""",
            run.id,
        )
        if restarted:
            # Some shares were staged on a server that has restarted since (a crash empties
            # UNLOGGED tables): the whole staging again, from the claims (decision 0914).
            await conn.execute(f"TRUNCATE {_stage_table(run.id)}")
            await self._restage(conn, current, list(range(run.partitions)))
        # Fresh statistics, so each partition's statement is planned with hash joins. A small
        # sample (3,000 rows a leaf, not 30,000) is enough for row counts and distinct values:
        # at 10 M sources the default sample took 24.7 s under load (bench/README.md).
        await conn.execute("SET LOCAL default_statistics_target = 10")
        await conn.execute(f"ANALYZE {_stage_leaves(run.id, run.partitions)}", timeout=LONG_S)
        await conn.execute("RESET default_statistics_target")
        row = await conn.fetchrow(
            "UPDATE settlement_runs SET stats = stats || jsonb_build_object('staged', $2::bigint), "
            "staged_at = clock_timestamp() WHERE id = $1 RETURNING *",
            run.id,
            staged,
        )
        return run_from_row(present(row, "the run is staged"))

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
        await self._restage(conn, run, lost)
        await conn.execute(f"ANALYZE {_stage_table(run.id)}", timeout=LONG_S)
        return len(lost)

    async def _restage(self, conn: asyncpg.Connection, run: SettlementRun, lost: list[int]) -> None:
        """Stage the given partitions again from the run's claims, and check each one's count
        and gross against what its staging recorded."""
        await conn.execute(f"SET LOCAL work_mem = '{STAGING_HASH_MEMORY}'")
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
