"""Settlement in PostgreSQL: set-based statements over the ledger's capture and refund transfers.

A run stages its eligible sources in one pass (`settlement_sources`), then each partition (a
hash bucket of merchants) prices and inserts its items with ONE INSERT ... SELECT that also
returns the per-settlement aggregates. Items never travel through Python except for reports,
which stream them in keyset-paginated chunks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import asyncpg

from clearport.core.errors import InvariantViolation
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import fetch_page
from clearport.settlement.domain import ItemLine, Payout, Settlement, SettlementRun
from clearport.settlement.fees import EEA_COUNTRIES

PARTITION_SQL = "(abs(hashtext({col})::bigint) % {parts})"
# The pool's command timeout (60 s) suits requests; a night's statements over millions of rows
# (staging, pricing a partition, its report) get this bound instead.
LONG_S = 3_600.0


def _run(row: asyncpg.Record) -> SettlementRun:
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


def _settlement(row: asyncpg.Record) -> Settlement:
    report = row["report"]
    return Settlement(
        id=row["id"],
        run_id=row["run_id"],
        business_date=row["business_date"],
        merchant_id=row["merchant_id"],
        currency=row["currency"],
        count=row["count"],
        gross=row["gross"],
        refunds=row["refunds"],
        fees=row["fees"],
        interchange=row["interchange"],
        scheme_fees=row["scheme_fees"],
        markup=row["markup"],
        rounding=row["rounding"],
        reserve_held=row["reserve_held"],
        reserve_released=row["reserve_released"],
        net=row["net"],
        carried_in=row["carried_in"],
        carried_out=row["carried_out"],
        payout=row["payout"],
        payout_id=row["payout_id"],
        flagged_items=row["flagged_items"],
        report=json.loads(report) if isinstance(report, str) else report,
        created_at=row["created_at"],
    )


def _payout(row: asyncpg.Record) -> Payout:
    return Payout(
        id=row["id"],
        merchant_id=row["merchant_id"],
        settlement_id=row["settlement_id"],
        amount=row["amount"],
        currency=row["currency"],
        status=row["status"],
        arrival_date=row["arrival_date"],
        payout_file_id=row["payout_file_id"],
        flag=row["flag"],
        failure_code=row["failure_code"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_SETTLEMENT_SELECT = (
    "SELECT s.*, p.id AS payout_id FROM settlements s LEFT JOIN payouts p ON p.settlement_id = s.id"
)

# Per-item pricing, in SQL, mirroring settlement/fees.price_item (tests compare the two).
# $1 run, $2 partition, $3..$10 the (brand, region) rate table computed by the domain.
_PRICE_ITEMS = """
WITH rates AS (
    SELECT * FROM unnest($3::text[], $4::text[], $5::numeric[], $6::bigint[], $7::boolean[],
                         $8::numeric[], $9::bigint[], $10::boolean[])
        AS r(brand, region, ic_bps, ic_fixed, ic_flag, sf_bps, sf_fixed, sf_flag)
), mp AS MATERIALIZED (
    -- Each merchant's pricing, parsed once per merchant rather than once per item.
    SELECT st.id AS settlement_id, st.merchant_id,
           m.pricing ->> 'model' = 'interchange_plus' AS icpp,
           coalesce((m.pricing ->> 'percent_bps')::numeric,
                    (m.pricing ->> 'markup_bps')::numeric) AS bps,
           coalesce((m.pricing ->> 'fixed_minor')::bigint,
                    (m.pricing ->> 'markup_fixed_minor')::bigint) AS fixed,
           nullif(m.pricing -> 'brand_overrides', '{}'::jsonb) AS overrides,
           CASE WHEN m.country = 'US' THEN 'us' WHEN m.country = 'GB' THEN 'uk'
                WHEN m.country = ANY($11::text[]) THEN 'eea' ELSE 'intl' END AS region,
           st.currency
      FROM settlements st JOIN merchants m ON m.id = st.merchant_id
     WHERE st.run_id = $1 AND st.partition = $2
), exact AS (
    SELECT s.source_id, s.transfer_id, s.type, s.merchant_id, s.currency, s.amount,
           s.created_at, s.payment_id, s.reference, s.brand, mp.settlement_id,
        CASE WHEN s.type <> 'capture' OR NOT mp.icpp THEN 0::numeric
             ELSE s.amount * coalesce(r.ic_bps, $12::numeric) * 0.0001
                  + coalesce(r.ic_fixed, $13::bigint) END AS ic_x,
        CASE WHEN s.type <> 'capture' OR NOT mp.icpp THEN 0::numeric
             ELSE s.amount * coalesce(r.sf_bps, $14::numeric) * 0.0001
                  + coalesce(r.sf_fixed, $15::bigint) END AS sf_x,
        CASE WHEN s.type <> 'capture' THEN 0::numeric
             WHEN mp.overrides IS NOT NULL AND NOT mp.icpp AND mp.overrides ? s.brand
             THEN s.amount * (mp.overrides -> s.brand ->> 'percent_bps')::numeric * 0.0001
                  + (mp.overrides -> s.brand ->> 'fixed_minor')::bigint
             ELSE s.amount * mp.bps * 0.0001 + mp.fixed END AS mk_x,
        CASE WHEN s.type <> 'capture' OR NOT mp.icpp THEN ''
             ELSE concat_ws(',',
                 CASE WHEN coalesce(r.ic_flag, true) THEN 'interchange_fallback' END,
                 CASE WHEN coalesce(r.sf_flag, true) THEN 'scheme_fee_fallback' END) END AS flags
      FROM settlement_sources s
      JOIN mp ON mp.merchant_id = s.merchant_id AND mp.currency = s.currency
      LEFT JOIN rates r ON r.brand = s.brand AND r.region = mp.region
     WHERE s.run_id = $1 AND s.partition = $2
), priced AS (
    SELECT exact.*,
           stl_round_half_even(ic_x) AS ic, stl_round_half_even(sf_x) AS sf,
           stl_round_half_even(mk_x) AS mk,
           CASE WHEN type = 'capture' THEN amount ELSE -amount END AS gross
      FROM exact
), ins AS (
    INSERT INTO settlement_items (source_id, settlement_id, transfer_id, merchant_id, payment_id,
        reference, type, brand, currency, gross, interchange, scheme_fee, markup, commission, net,
        flags, created_at)
    SELECT source_id, settlement_id, transfer_id, merchant_id, payment_id, reference, type, brand,
           currency, gross, ic, sf, mk, ic + sf + mk, gross - (ic + sf + mk), flags, created_at
      FROM priced
)
SELECT settlement_id, count(*) AS n,
       coalesce(sum(amount) FILTER (WHERE type = 'capture'), 0)::bigint AS gross,
       coalesce(sum(amount) FILTER (WHERE type = 'refund'), 0)::bigint AS refunds,
       sum(ic)::bigint AS ic, sum(sf)::bigint AS sf, sum(mk)::bigint AS mk,
       sum(ic_x)::text AS ic_x, sum(sf_x)::text AS sf_x, sum(mk_x)::text AS mk_x,
       sum(gross - (ic + sf + mk))::bigint AS net,
       count(*) FILTER (WHERE flags <> '') AS flagged
  FROM priced GROUP BY settlement_id
"""


_TOTAL_COLUMNS = (
    "count", "gross", "refunds", "fees", "interchange", "scheme_fees", "markup", "rounding",
    "reserve_held", "reserve_released", "net", "carried_in", "carried_out", "payout",
    "flagged_items",
)  # fmt: skip


def _fraction(text: str) -> Fraction:
    return Fraction(Decimal(text))


class PgSettlementStore:
    # --- runs and partitions ---------------------------------------------------------------------

    async def start_run(
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
    ) -> tuple[SettlementRun, bool]:
        """Create the run for the date, or join the existing one (created=False)."""
        conn = conn_of(tx)
        row = await conn.fetchrow(
            """INSERT INTO settlement_runs (id, business_date, cutoff_at, lookback_from,
                   partitions, status, created_by, created_at)
               VALUES ($1, $2, $3, $4, $5, 'running', $6, $7)
               ON CONFLICT (business_date) DO NOTHING RETURNING *""",
            run_id,
            business_date,
            cutoff_at,
            lookback_from,
            partitions,
            created_by,
            now,
        )
        if row is None:
            existing = await conn.fetchrow(
                "SELECT * FROM settlement_runs WHERE business_date = $1", business_date
            )
            if existing is None:
                raise InvariantViolation("the run of the date exists")
            return _run(existing), False
        await conn.execute(
            """INSERT INTO settlement_partitions (run_id, partition, status)
               SELECT $1, g, 'pending' FROM generate_series(0, $2 - 1) g""",
            run_id,
            partitions,
        )
        part = PARTITION_SQL.format(col="a.owner", parts="$4")
        # Room for the big hash joins of a night's volume (the default 4 MB spills to disk).
        await conn.execute("SET LOCAL work_mem = '256MB'")
        staged = await conn.execute(
            f"""INSERT INTO settlement_sources (run_id, partition, source_id, transfer_id, type,
                    merchant_id, currency, amount, created_at, payment_id, brand, reference)
                SELECT $1, {part}, t.source, t.id, t.code, a.owner, t.currency, t.amount,
                       t.created_at, p.id, p.card_brand, p.reference
                  FROM ledger_transfers t
                  JOIN ledger_accounts a ON a.id = CASE WHEN t.code = 'capture'
                       THEN t.credit_account_id ELSE t.debit_account_id END
                  LEFT JOIN refunds r ON t.code = 'refund' AND r.id = t.source
                  LEFT JOIN payments p
                         ON p.id = CASE WHEN t.code = 'capture' THEN t.source ELSE r.payment_id END
                 WHERE t.code IN ('capture', 'refund') AND t.action = 'post'
                   AND t.created_at >= $2 AND t.created_at < $3
                   AND a.kind = 'pending' AND t.source IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM settlement_items i
                                    WHERE i.source_id = t.source)""",
            run_id,
            lookback_from,
            cutoff_at,
            partitions,
            timeout=LONG_S,
        )
        # Fresh statistics, so each partition's statement is planned with hash joins.
        await conn.execute("ANALYZE settlement_sources", timeout=LONG_S)
        missing = await conn.fetchval(
            "SELECT count(*) FROM settlement_sources WHERE run_id = $1 AND payment_id IS NULL",
            run_id,
            timeout=LONG_S,
        )
        if missing:
            raise InvariantViolation(f"{missing} staged sources have no payment")
        await conn.execute(
            "UPDATE settlement_runs SET stats = jsonb_build_object('staged', $2::bigint) "
            "WHERE id = $1",
            run_id,
            int(staged.split()[-1]),
        )
        run = await conn.fetchrow("SELECT * FROM settlement_runs WHERE id = $1", run_id)
        if run is None:
            raise InvariantViolation("the new run is visible")
        return _run(run), True

    async def get_run(self, tx: Transaction, run_id: str) -> SettlementRun | None:
        row = await conn_of(tx).fetchrow("SELECT * FROM settlement_runs WHERE id = $1", run_id)
        return None if row is None else _run(row)

    async def first_source_at(self, tx: Transaction) -> datetime | None:
        # Two probes of the (code, created_at) index rather than one scan.
        value: datetime | None = await conn_of(tx).fetchval(
            "SELECT least("
            "(SELECT min(created_at) FROM ledger_transfers WHERE code = 'capture'), "
            "(SELECT min(created_at) FROM ledger_transfers WHERE code = 'refund'))"
        )
        return value

    async def get_run_by_date(self, tx: Transaction, business_date: date) -> SettlementRun | None:
        row = await conn_of(tx).fetchrow(
            "SELECT * FROM settlement_runs WHERE business_date = $1", business_date
        )
        return None if row is None else _run(row)

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
            """UPDATE settlement_partitions SET status = 'done', items = $3, settlements = $4,
                   done_at = $5 WHERE run_id = $1 AND partition = $2 AND status = 'pending'""",
            run_id,
            partition,
            items,
            settlements,
            now,
        )

    async def finish_run(
        self, tx: Transaction, run_id: str, status: str, stats: dict[str, Any], error: str | None,
        now: datetime,
    ) -> None:  # fmt: skip
        await conn_of(tx).execute(
            """UPDATE settlement_runs SET status = $2, stats = stats || $3::jsonb, error = $4,
                   completed_at = $5 WHERE id = $1""",
            run_id,
            status,
            stats,
            error,
            now,
        )

    # --- one partition ---------------------------------------------------------------------------

    async def partition_pairs(
        self, tx: Transaction, run: SettlementRun, partition: int
    ) -> list[tuple[str, str]]:
        """(merchant, currency) with items in the partition or a reserve release due."""
        part = PARTITION_SQL.format(col="merchant_id", parts="$4")
        rows = await conn_of(tx).fetch(
            f"""SELECT DISTINCT merchant_id, currency FROM settlement_sources
                 WHERE run_id = $1 AND partition = $2
                UNION
                SELECT merchant_id, currency FROM reserve_holds
                 WHERE released_by IS NULL AND release_on <= $3 AND {part} = $2
                ORDER BY 1, 2""",
            run.id,
            partition,
            run.business_date,
            run.partitions,
        )
        return [(r["merchant_id"], r["currency"]) for r in rows]

    async def insert_settlements(
        self,
        tx: Transaction,
        run: SettlementRun,
        partition: int,
        rows: Sequence[tuple[str, str, str]],
        now: datetime,
    ) -> None:
        await conn_of(tx).execute(
            """INSERT INTO settlements (id, run_id, partition, business_date, merchant_id,
                   currency, created_at)
               SELECT u.id, $1, $7, $2, u.m, u.c, $6
                 FROM unnest($3::text[], $4::text[], $5::text[]) AS u(id, m, c)""",
            run.id,
            run.business_date,
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            now,
            partition,
        )

    async def price_items(
        self,
        tx: Transaction,
        run: SettlementRun,
        partition: int,
        rates: Sequence[tuple[str, str, Fraction, int, bool, Fraction, int, bool]],
        fallback: tuple[Fraction, int, Fraction, int],
    ) -> dict[str, dict[str, Any]]:
        """Insert the partition's items, priced; returns aggregates per settlement id."""

        def dec(f: Fraction) -> Decimal:
            return Decimal(f.numerator) / Decimal(f.denominator)

        await conn_of(tx).execute("SET LOCAL work_mem = '256MB'")
        rows = await conn_of(tx).fetch(
            _PRICE_ITEMS,
            run.id,
            partition,
            [r[0] for r in rates],
            [r[1] for r in rates],
            [dec(r[2]) for r in rates],
            [r[3] for r in rates],
            [r[4] for r in rates],
            [dec(r[5]) for r in rates],
            [r[6] for r in rates],
            [r[7] for r in rates],
            sorted(EEA_COUNTRIES),
            dec(fallback[0]),
            fallback[1],
            dec(fallback[2]),
            fallback[3],
            timeout=LONG_S,
        )
        return {
            r["settlement_id"]: {
                "count": r["n"],
                "gross": r["gross"],
                "refunds": r["refunds"],
                "ic": r["ic"],
                "sf": r["sf"],
                "mk": r["mk"],
                "ic_x": _fraction(r["ic_x"]),
                "sf_x": _fraction(r["sf_x"]),
                "mk_x": _fraction(r["mk_x"]),
                "net": r["net"],
                "flagged": r["flagged"],
            }
            for r in rows
        }

    async def staged_count(self, tx: Transaction, run_id: str, partition: int) -> int:
        return int(
            await conn_of(tx).fetchval(
                "SELECT count(*) FROM settlement_sources WHERE run_id = $1 AND partition = $2",
                run_id,
                partition,
            )
        )

    async def merchant_terms(
        self, tx: Transaction, merchant_ids: Sequence[str]
    ) -> dict[str, tuple[dict[str, Any], int]]:
        rows = await conn_of(tx).fetch(
            "SELECT id, reserve, payout_delay_days FROM merchants WHERE id = ANY($1::text[])",
            list(merchant_ids),
        )
        return {
            r["id"]: (
                json.loads(r["reserve"]) if isinstance(r["reserve"], str) else dict(r["reserve"]),
                r["payout_delay_days"],
            )
            for r in rows
        }

    async def carried_in(
        self, tx: Transaction, pairs: Sequence[tuple[str, str]], before: date
    ) -> dict[tuple[str, str], int]:
        rows = await conn_of(tx).fetch(
            """SELECT DISTINCT ON (s.merchant_id, s.currency) s.merchant_id, s.currency,
                      s.carried_out
                 FROM settlements s
                 JOIN unnest($1::text[], $2::text[]) AS u(m, c)
                   ON s.merchant_id = u.m AND s.currency = u.c
                WHERE s.business_date < $3
                ORDER BY s.merchant_id, s.currency, s.business_date DESC""",
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            before,
        )
        return {(r["merchant_id"], r["currency"]): r["carried_out"] for r in rows}

    async def releases_due(
        self, tx: Transaction, merchant_ids: Sequence[str], on: date
    ) -> list[tuple[str, str, str, int]]:
        """(hold settlement id, merchant, currency, amount) due on or before `on`, locked."""
        rows = await conn_of(tx).fetch(
            """SELECT settlement_id, merchant_id, currency, amount FROM reserve_holds
                WHERE merchant_id = ANY($1::text[]) AND released_by IS NULL AND release_on <= $2
                ORDER BY settlement_id FOR UPDATE""",
            list(merchant_ids),
            on,
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def complete_settlements(
        self,
        tx: Transaction,
        totals: Sequence[dict[str, Any]],
        holds: Sequence[tuple[str, str, str, int, date]],
        releases: Sequence[tuple[str, str]],
        payouts: Sequence[tuple[str, str, str, int, str, date, str | None]],
        now: datetime,
    ) -> None:
        conn = conn_of(tx)
        cols = _TOTAL_COLUMNS
        arrays = ", ".join(f"${i + 2}::bigint[]" for i in range(len(cols)))
        await conn.execute(
            f"""UPDATE settlements s SET {", ".join(f"{c} = u.{c}" for c in cols)}
                  FROM unnest($1::text[], {arrays}) AS u(id, {", ".join(cols)})
                 WHERE s.id = u.id""",
            [t["id"] for t in totals],
            *[[t[c] for t in totals] for c in cols],
        )
        if holds:
            await conn.execute(
                """INSERT INTO reserve_holds (settlement_id, merchant_id, currency, amount,
                       release_on)
                   SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[],
                       $5::date[])""",
                *[list(col) for col in zip(*holds, strict=True)],
            )
        if releases:
            await conn.execute(
                """UPDATE reserve_holds h SET released_by = u.by
                     FROM unnest($1::text[], $2::text[]) AS u(hold, by)
                    WHERE h.settlement_id = u.hold AND h.released_by IS NULL""",
                [r[0] for r in releases],
                [r[1] for r in releases],
            )
        if payouts:
            await conn.execute(
                """INSERT INTO payouts (id, merchant_id, settlement_id, amount, currency, status,
                       arrival_date, flag, created_at, updated_at)
                   SELECT u.id, u.m, u.s, u.a, u.c, 'pending', u.d, u.f, $8, $8
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                          $6::date[], $7::text[]) AS u(id, m, s, a, c, d, f)""",
                *[list(col) for col in zip(*payouts, strict=True)],
                now,
            )

    # --- reports ---------------------------------------------------------------------------------

    async def item_lines(
        self, tx: Transaction, settlement_id: str, after: str, limit: int
    ) -> list[ItemLine]:
        rows = await conn_of(tx).fetch(
            """SELECT settlement_id, merchant_id, payment_id, source_id, reference, type, brand,
                      currency, gross, interchange, scheme_fee, markup, commission, net, flags
                 FROM settlement_items WHERE settlement_id = $1 AND source_id > $2
                ORDER BY source_id LIMIT $3""",
            settlement_id,
            after,
            limit,
        )
        return [ItemLine(*r) for r in rows]

    async def partition_report_csv(
        self, tx: Transaction, run_id: str, partition: int, output: Callable[[bytes], Any]
    ) -> None:
        """Stream the partition's items as CSV (COPY), ordered by settlement and source."""

        async def sink(data: bytes) -> None:
            output(data)

        await conn_of(tx).copy_from_query(
            """SELECT i.settlement_id, i.merchant_id, i.payment_id, i.source_id, i.reference,
                      i.type, i.brand, i.currency, i.gross, i.interchange, i.scheme_fee,
                      i.markup, i.commission, i.net, i.flags
                 FROM settlements s
                 JOIN settlement_items i ON i.settlement_id = s.id
                WHERE s.run_id = $1 AND s.partition = $2
                ORDER BY i.settlement_id, i.source_id""",
            run_id,
            partition,
            output=sink,
            format="csv",
            timeout=LONG_S,
        )

    async def partition_report_summary(
        self, tx: Transaction, run_id: str, partition: int
    ) -> dict[str, Any]:
        row = await conn_of(tx).fetchrow(
            """SELECT count(i.*) AS count,
                      coalesce(sum(i.gross) FILTER (WHERE i.gross > 0), 0) AS gross_minor,
                      coalesce(-sum(i.gross) FILTER (WHERE i.gross < 0), 0) AS refunds_minor,
                      coalesce(sum(i.interchange), 0) AS interchange_minor,
                      coalesce(sum(i.scheme_fee), 0) AS scheme_fee_minor,
                      coalesce(sum(i.markup), 0) AS markup_minor,
                      coalesce(sum(i.commission), 0) AS commission_minor,
                      coalesce(sum(i.net), 0) AS net_minor,
                      count(*) FILTER (WHERE i.flags <> '') AS flagged,
                      (SELECT count(*) FROM settlements x
                        WHERE x.run_id = $1 AND x.partition = $2) AS settlements,
                      (SELECT coalesce(sum(x.gross - x.refunds - x.fees), 0) FROM settlements x
                        WHERE x.run_id = $1 AND x.partition = $2) AS settlements_net_minor
                 FROM settlements s JOIN settlement_items i ON i.settlement_id = s.id
                WHERE s.run_id = $1 AND s.partition = $2""",
            run_id,
            partition,
            timeout=LONG_S,
        )
        if row is None:
            raise InvariantViolation("aggregates return one row")
        return {k: int(v) for k, v in row.items()}

    async def partitions_without_report(self, tx: Transaction, run_id: str) -> list[int]:
        rows = await conn_of(tx).fetch(
            "SELECT DISTINCT partition FROM settlements WHERE run_id = $1 AND report IS NULL "
            "ORDER BY partition",
            run_id,
        )
        return [r["partition"] for r in rows]

    async def set_partition_report(
        self, tx: Transaction, run_id: str, partition: int, report: dict[str, Any]
    ) -> None:
        await conn_of(tx).execute(
            "UPDATE settlements SET report = $3::jsonb WHERE run_id = $1 AND partition = $2",
            run_id,
            partition,
            report,
        )

    # --- payouts ---------------------------------------------------------------------------------

    async def due_payouts(self, tx: Transaction, on: date) -> list[Payout]:
        rows = await conn_of(tx).fetch(
            """SELECT * FROM payouts WHERE status = 'pending' AND arrival_date <= $1
                ORDER BY currency, id FOR UPDATE""",
            on,
        )
        return [_payout(r) for r in rows]

    async def flag_payouts(self, tx: Transaction, ids: Sequence[str], flag: str) -> None:
        await conn_of(tx).execute(
            "UPDATE payouts SET flag = $2 WHERE id = ANY($1::text[]) AND flag IS DISTINCT FROM $2",
            list(ids),
            flag,
        )

    async def payout_file(self, tx: Transaction, business_date: date, currency: str) -> Any:
        return await conn_of(tx).fetchrow(
            "SELECT * FROM payout_files WHERE business_date = $1 AND currency = $2",
            business_date,
            currency,
        )

    async def record_payout_file(
        self,
        tx: Transaction,
        *,
        file_id: str,
        business_date: date,
        currency: str,
        fmt: str,
        key: str,
        uri: str,
        sha256: str,
        payout_ids: Sequence[str],
        total: int,
        now: datetime,
    ) -> None:
        conn = conn_of(tx)
        await conn.execute(
            """INSERT INTO payout_files (id, business_date, currency, format, object_key, uri,
                   sha256, count, total, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
            file_id,
            business_date,
            currency,
            fmt,
            key,
            uri,
            sha256,
            len(payout_ids),
            total,
            now,
        )
        await conn.execute(
            """UPDATE payouts SET status = 'in_transit', payout_file_id = $2, flag = NULL,
                   updated_at = $3 WHERE id = ANY($1::text[]) AND status = 'pending'""",
            list(payout_ids),
            file_id,
            now,
        )

    async def get_payout(
        self, tx: Transaction, payout_id: str, *, for_update: bool = False
    ) -> Payout | None:
        row = await conn_of(tx).fetchrow(
            "SELECT * FROM payouts WHERE id = $1" + (" FOR UPDATE" if for_update else ""),
            payout_id,
        )
        return None if row is None else _payout(row)

    async def set_payout_status(
        self, tx: Transaction, payout_id: str, status: str, failure_code: str | None, now: datetime
    ) -> None:
        await conn_of(tx).execute(
            "UPDATE payouts SET status = $2, failure_code = $3, updated_at = $4 WHERE id = $1",
            payout_id,
            status,
            failure_code,
            now,
        )

    # --- reads -----------------------------------------------------------------------------------

    async def get_settlement(self, tx: Transaction, settlement_id: str) -> Settlement | None:
        row = await conn_of(tx).fetchrow(f"{_SETTLEMENT_SELECT} WHERE s.id = $1", settlement_id)
        return None if row is None else _settlement(row)

    async def list_settlements(
        self, tx: Transaction, page: PageRequest, merchant_id: str | None, run_id: str | None
    ) -> Page[Settlement]:
        where, args = [], []
        if merchant_id is not None:
            args.append(merchant_id)
            where.append(f"s.merchant_id = ${len(args)}")
        if run_id is not None:
            args.append(run_id)
            where.append(f"s.run_id = ${len(args)}")
        return await fetch_page(
            conn_of(tx),
            select=_SETTLEMENT_SELECT,
            where=where,
            args=args,
            page=page,
            row_to=_settlement,
            id_column="s.id",
        )

    async def list_items(
        self, tx: Transaction, settlement_id: str, page: PageRequest
    ) -> Page[ItemLine]:
        return await fetch_page(
            conn_of(tx),
            select="""SELECT settlement_id, merchant_id, payment_id, source_id, reference, type,
                      brand, currency, gross, interchange, scheme_fee, markup, commission, net,
                      flags FROM settlement_items""",
            where=["settlement_id = $1"],
            args=[settlement_id],
            page=page,
            row_to=lambda r: ItemLine(*r),
            id_column="source_id",
        )

    async def list_payouts(
        self, tx: Transaction, page: PageRequest, merchant_id: str | None, status: str | None
    ) -> Page[Payout]:
        where, args = [], []
        if merchant_id is not None:
            args.append(merchant_id)
            where.append(f"merchant_id = ${len(args)}")
        if status is not None:
            args.append(status)
            where.append(f"status = ${len(args)}")
        return await fetch_page(
            conn_of(tx),
            select="SELECT * FROM payouts",
            where=where,
            args=args,
            page=page,
            row_to=_payout,
        )

    # --- invariants ------------------------------------------------------------------------------

    async def run_invariants(self, tx: Transaction, run: SettlementRun) -> list[str]:
        """End-of-run checks in SQL; returns the violations (empty when all hold)."""
        conn = conn_of(tx)
        problems: list[str] = []
        staged = await conn.fetchrow(
            """SELECT count(*) AS n,
                      coalesce(sum(CASE WHEN type = 'capture' THEN amount ELSE -amount END), 0)
                        AS total
                 FROM settlement_sources WHERE run_id = $1""",
            run.id,
            timeout=LONG_S,
        )
        items = await conn.fetchrow(
            """SELECT count(*) AS n, coalesce(sum(i.gross), 0) AS total
                 FROM settlement_items i JOIN settlements s ON s.id = i.settlement_id
                WHERE s.run_id = $1""",
            run.id,
            timeout=LONG_S,
        )
        if staged is None or items is None:
            raise InvariantViolation("aggregates return one row")
        if (staged["n"], staged["total"]) != (items["n"], items["total"]):
            problems.append(
                f"items {items['n']}/{items['total']} != eligible sources "
                f"{staged['n']}/{staged['total']}"
            )
        mismatch = await conn.fetchval(
            """SELECT count(*) FROM settlements s
                 LEFT JOIN (SELECT settlement_id, count(*) n,
                                   coalesce(sum(gross) FILTER (WHERE type = 'capture'), 0) g,
                                   coalesce(-sum(gross) FILTER (WHERE type = 'refund'), 0) r,
                                   sum(commission) f, sum(net) net
                              FROM settlement_items GROUP BY settlement_id) i
                   ON i.settlement_id = s.id
                WHERE s.run_id = $1
                  AND (coalesce(i.n, 0), coalesce(i.g, 0), coalesce(i.r, 0), coalesce(i.f, 0))
                      IS DISTINCT FROM (s.count, s.gross, s.refunds, s.fees)""",
            run.id,
            timeout=LONG_S,
        )
        if mismatch:
            problems.append(f"{mismatch} settlements differ from the sum of their items")
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
