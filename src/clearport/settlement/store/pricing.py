"""One partition in PostgreSQL: its settlements opened, its items priced and inserted with ONE
INSERT ... SELECT that also returns the per-settlement aggregates (items never travel through
Python), what netting needs read, and what netting returned recorded set-based."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

from clearport.core.errors import invariant
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.statements import Params
from clearport.settlement.domain import (
    CarriedBalance,
    ItemAggregates,
    MerchantCurrency,
    MerchantTerms,
    NewPayout,
    OpenSettlement,
    ReserveHold,
    ReserveHoldDue,
    ReserveRelease,
    SettlementRun,
    SettlementTotals,
)
from clearport.settlement.fees import COUNTRY_REGIONS, DEFAULT_REGION, FeeTotals, RateGrid
from clearport.settlement.store.runs import LONG_S, partition_of

_pairs = Params()
_PARTITION_PAIRS = f"""
SELECT DISTINCT merchant_id, currency FROM settlement_sources
 WHERE run_id = {_pairs("run_id")} AND partition = {_pairs("partition")}
UNION
SELECT merchant_id, currency FROM reserve_holds
 WHERE released_by IS NULL AND release_on <= {_pairs("business_date")}
   AND {partition_of("merchant_id", _pairs("partitions"))} = {_pairs("partition")}
UNION
SELECT merchant_id, currency FROM payouts
 WHERE status = 'failed' AND repaid_by IS NULL
   AND {partition_of("merchant_id", _pairs("partitions"))} = {_pairs("partition")}
ORDER BY 1, 2"""

_open = Params()
_INSERT_SETTLEMENTS = f"""
INSERT INTO settlements (id, run_id, partition, business_date, merchant_id, currency, created_at)
SELECT u.id, {_open("run_id")}, {_open("partition")}, {_open("business_date")}, u.m, u.c,
       {_open("created_at")}
  FROM unnest({_open("ids", "text[]")}, {_open("merchant_ids", "text[]")},
              {_open("currencies", "text[]")}) AS u(id, m, c)"""

# Per-item pricing, in SQL, mirroring settlement/fees.price_item (tests compare the two): the
# brand x card type x region x currency rates and the country -> region table come from the
# domain as arrays; the card type and issuer country are the BIN table's, staged with the item.
# A dispute's fee was charged when it came (`fee` of its source): the item shows it as its markup,
# with a reversal's given back (negative); the aggregates keep it apart from the captures' fees,
# which this settlement charges.
_price = Params()
_PRICE_ITEMS = f"""
WITH rates AS (
    SELECT * FROM unnest({_price("brand", "text[]")}, {_price("card_type", "text[]")},
                         {_price("region", "text[]")}, {_price("currency", "text[]")},
                         {_price("ic_bps", "numeric[]")}, {_price("ic_fixed", "bigint[]")},
                         {_price("ic_flag", "boolean[]")}, {_price("sf_bps", "numeric[]")},
                         {_price("sf_fixed", "bigint[]")}, {_price("sf_flag", "boolean[]")})
        AS r(brand, card_type, region, currency, ic_bps, ic_fixed, ic_flag, sf_bps, sf_fixed,
             sf_flag)
), fallback AS (
    SELECT * FROM unnest({_price("fallback_currency", "text[]")},
                         {_price("fallback_ic_fixed", "bigint[]")},
                         {_price("fallback_sf_fixed", "bigint[]")})
        AS f(currency, ic_fixed, sf_fixed)
), regions AS (
    SELECT * FROM unnest({_price("countries", "text[]")}, {_price("country_regions", "text[]")})
        AS cr(country, region)
), mp AS MATERIALIZED (
    -- Each merchant's pricing in the settlement's currency, parsed once per settlement rather
    -- than once per item. A fixed amount it does not name in that currency is 0 (decision 0703).
    SELECT st.id AS settlement_id, st.merchant_id,
           m.pricing ->> 'model' = 'interchange_plus' AS icpp,
           coalesce((m.pricing ->> 'percent_bps')::numeric,
                    (m.pricing ->> 'markup_bps')::numeric) AS bps,
           coalesce((m.pricing -> 'fixed_minor' ->> st.currency)::bigint,
                    (m.pricing -> 'markup_fixed_minor' ->> st.currency)::bigint, 0) AS fixed,
           nullif(m.pricing -> 'brand_overrides', '{{}}'::jsonb) AS overrides,
           coalesce(cr.region, {_price("default_region", "text")}) AS region,
           st.currency
      FROM settlements st JOIN merchants m ON m.id = st.merchant_id
      LEFT JOIN regions cr ON cr.country = m.country
     WHERE st.run_id = {_price("run_id")} AND st.partition = {_price("partition")}
), exact AS (
    SELECT s.source_id, s.transfer_id, s.type, s.merchant_id, s.currency, s.amount,
           s.created_at, s.payment_id, s.reference, s.brand, mp.settlement_id,
        CASE WHEN s.type <> 'capture' OR NOT mp.icpp THEN 0::numeric
             ELSE s.amount * coalesce(r.ic_bps, {_price("fallback_ic_bps", "numeric")}) * 0.0001
                  + coalesce(r.ic_fixed, fb.ic_fixed, 0) END AS ic_x,
        CASE WHEN s.type <> 'capture' OR NOT mp.icpp THEN 0::numeric
             ELSE s.amount * coalesce(r.sf_bps, {_price("fallback_sf_bps", "numeric")}) * 0.0001
                  + coalesce(r.sf_fixed, fb.sf_fixed, 0) END AS sf_x,
        CASE WHEN s.type = 'dispute' THEN s.fee::numeric
             WHEN s.type = 'dispute_reversal' THEN -s.fee::numeric
             WHEN s.type <> 'capture' THEN 0::numeric
             WHEN mp.overrides IS NOT NULL AND NOT mp.icpp AND mp.overrides ? s.brand
             THEN s.amount * (mp.overrides -> s.brand ->> 'percent_bps')::numeric * 0.0001
                  + coalesce((mp.overrides -> s.brand -> 'fixed_minor' ->> s.currency)::bigint, 0)
             ELSE s.amount * mp.bps * 0.0001 + mp.fixed END AS mk_x,
        CASE WHEN s.type <> 'capture' OR NOT mp.icpp THEN ''
             ELSE concat_ws(',',
                 CASE WHEN coalesce(r.ic_flag, true) THEN 'interchange_fallback' END,
                 CASE WHEN coalesce(r.sf_flag, true) THEN 'scheme_fee_fallback' END) END AS flags
      FROM settlement_sources s
      JOIN mp ON mp.merchant_id = s.merchant_id AND mp.currency = s.currency
      -- The card's interchange region: the acquiring one when issued there or not known, else
      -- inter-regional (settlement/fees.interchange_region).
      LEFT JOIN regions ir ON ir.country = s.issuer_country
      LEFT JOIN rates r
             ON r.brand = s.brand AND r.card_type = coalesce(s.card_type, '')
            AND r.region = CASE
                WHEN s.issuer_country IS NULL
                  OR coalesce(ir.region, {_price("default_region", "text")}) = mp.region
                THEN mp.region ELSE {_price("default_region", "text")} END
            AND r.currency = s.currency
      LEFT JOIN fallback fb ON fb.currency = s.currency
     WHERE s.run_id = {_price("run_id")} AND s.partition = {_price("partition")}
), priced AS (
    SELECT exact.*,
           stl_round_half_even(ic_x) AS ic, stl_round_half_even(sf_x) AS sf,
           stl_round_half_even(mk_x) AS mk,
           CASE WHEN type IN ('capture', 'dispute_reversal', 'adjustment') THEN amount
                ELSE -amount END AS gross
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
       (coalesce(sum(amount) FILTER (WHERE type = 'dispute'), 0)
        - coalesce(sum(amount) FILTER (WHERE type = 'dispute_reversal'), 0))::bigint AS disputes,
       coalesce(sum(amount) FILTER (WHERE type = 'adjustment'), 0)::bigint AS adjustments,
       coalesce(sum(ic) FILTER (WHERE type = 'capture'), 0)::bigint AS ic,
       coalesce(sum(sf) FILTER (WHERE type = 'capture'), 0)::bigint AS sf,
       coalesce(sum(mk) FILTER (WHERE type = 'capture'), 0)::bigint AS mk,
       coalesce(sum(ic_x) FILTER (WHERE type = 'capture'), 0)::text AS ic_x,
       coalesce(sum(sf_x) FILTER (WHERE type = 'capture'), 0)::text AS sf_x,
       coalesce(sum(mk_x) FILTER (WHERE type = 'capture'), 0)::text AS mk_x,
       coalesce(sum(mk) FILTER (WHERE type <> 'capture'), 0)::bigint AS dispute_fees,
       sum(gross - (ic + sf + mk))::bigint AS net,
       count(*) FILTER (WHERE flags <> '') AS flagged
  FROM priced GROUP BY settlement_id"""

_carried = Params()
_CARRIED_IN = f"""
SELECT DISTINCT ON (s.merchant_id, s.currency) s.merchant_id, s.currency, s.carried_out
  FROM settlements s
  JOIN unnest({_carried("merchant_ids", "text[]")}, {_carried("currencies", "text[]")}) AS u(m, c)
    ON s.merchant_id = u.m AND s.currency = u.c
 WHERE s.business_date < {_carried("before")}
 ORDER BY s.merchant_id, s.currency, s.business_date DESC"""

# settlements column <- SettlementTotals field
_TOTAL_COLUMNS = (
    ("count", "count"), ("gross", "gross_minor"), ("refunds", "refunds_minor"),
    ("fees", "fees_minor"), ("interchange", "interchange_minor"),
    ("scheme_fees", "scheme_fees_minor"), ("markup", "markup_minor"),
    ("rounding", "rounding_minor"), ("reserve_held", "reserve_held_minor"),
    ("reserve_released", "reserve_released_minor"), ("net", "net_minor"),
    ("carried_in", "carried_in_minor"), ("carried_out", "carried_out_minor"),
    ("payout", "payout_minor"), ("flagged_items", "flagged_items"),
    ("disputes", "disputes_minor"), ("adjustments", "adjustments_minor"),
    ("dispute_fees", "dispute_fees_minor"), ("repaid", "repaid_minor"),
)  # fmt: skip
invariant(
    sorted(name for _, name in _TOTAL_COLUMNS)
    == sorted(f.name for f in dataclasses.fields(SettlementTotals) if f.name != "settlement_id"),
    "every settlement total has its column",
)

_totals = Params()
_UPDATE_TOTALS = f"""
UPDATE settlements s SET {", ".join(f"{c} = u.{c}" for c, _ in _TOTAL_COLUMNS)}
  FROM unnest({_totals("id", "text[]")},
              {", ".join(_totals(c, "bigint[]") for c, _ in _TOTAL_COLUMNS)})
       AS u(id, {", ".join(c for c, _ in _TOTAL_COLUMNS)})
 WHERE s.id = u.id"""

_holds = Params()
_INSERT_HOLDS = f"""
INSERT INTO reserve_holds (settlement_id, merchant_id, currency, amount, release_on)
SELECT * FROM unnest({_holds("settlement_ids", "text[]")}, {_holds("merchant_ids", "text[]")},
                     {_holds("currencies", "text[]")}, {_holds("amounts", "bigint[]")},
                     {_holds("release_on", "date[]")})"""

_releases = Params()
_RELEASE_HOLDS = f"""
UPDATE reserve_holds h SET released_by = u.by
  FROM unnest({_releases("held_by", "text[]")}, {_releases("released_by", "text[]")})
       AS u(hold, by)
 WHERE h.settlement_id = u.hold AND h.released_by IS NULL"""

_repaid = Params()
_MARK_REPAID = f"""
UPDATE payouts p SET repaid_by = u.by, updated_at = {_repaid("now")}
  FROM unnest({_repaid("ids", "text[]")}, {_repaid("by", "text[]")}) AS u(id, by)
 WHERE p.id = u.id AND p.status = 'failed' AND p.repaid_by IS NULL"""

_payouts = Params()
_INSERT_PAYOUTS = f"""
INSERT INTO payouts (id, merchant_id, settlement_id, amount, currency, status, arrival_date,
    flag, created_at, updated_at)
SELECT u.id, u.m, u.s, u.a, u.c, 'pending', u.d, NULL, {_payouts("now")}, {_payouts("now")}
  FROM unnest({_payouts("ids", "text[]")}, {_payouts("merchant_ids", "text[]")},
              {_payouts("settlement_ids", "text[]")}, {_payouts("amounts", "bigint[]")},
              {_payouts("currencies", "text[]")}, {_payouts("arrival_dates", "date[]")})
       AS u(id, m, s, a, c, d)"""


def _decimal(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)


def _fraction(text: str) -> Fraction:
    return Fraction(Decimal(text))


class PgPricingStore:
    async def partition_pairs(
        self, tx: Transaction, run: SettlementRun, partition: int
    ) -> list[MerchantCurrency]:
        """(merchant, currency) with items in the partition, a reserve release due or failed
        payouts to pay again."""
        rows = await conn_of(tx).fetch(
            _PARTITION_PAIRS,
            *_pairs.args(
                run_id=run.id,
                partition=partition,
                business_date=run.business_date,
                partitions=run.partitions,
            ),
        )
        return [MerchantCurrency(r["merchant_id"], r["currency"]) for r in rows]

    async def insert_settlements(
        self,
        tx: Transaction,
        run: SettlementRun,
        partition: int,
        settlements: Sequence[OpenSettlement],
        now: datetime,
    ) -> None:
        await conn_of(tx).execute(
            _INSERT_SETTLEMENTS,
            *_open.args(
                run_id=run.id,
                partition=partition,
                business_date=run.business_date,
                created_at=now,
                ids=[s.id for s in settlements],
                merchant_ids=[s.merchant_id for s in settlements],
                currencies=[s.currency for s in settlements],
            ),
        )

    async def price_items(
        self, tx: Transaction, run: SettlementRun, partition: int, rates: RateGrid
    ) -> list[ItemAggregates]:
        """Insert the partition's items, priced; returns the aggregates of each settlement."""
        grid = rates.rates
        fallback_ic, fallback_sf = rates.fallback_interchange, rates.fallback_scheme_fee
        await conn_of(tx).execute("SET LOCAL work_mem = '256MB'")
        rows = await conn_of(tx).fetch(
            _PRICE_ITEMS,
            *_price.args(
                run_id=run.id,
                partition=partition,
                brand=[r.brand for r in grid],
                card_type=[r.card_type for r in grid],
                region=[r.region for r in grid],
                currency=[r.currency for r in grid],
                ic_bps=[_decimal(r.interchange.bps) for r in grid],
                ic_fixed=[r.interchange.fixed_in(r.currency) for r in grid],
                ic_flag=[r.interchange_fallback for r in grid],
                sf_bps=[_decimal(r.scheme_fee.bps) for r in grid],
                sf_fixed=[r.scheme_fee.fixed_in(r.currency) for r in grid],
                sf_flag=[r.scheme_fee_fallback for r in grid],
                countries=list(COUNTRY_REGIONS),
                country_regions=list(COUNTRY_REGIONS.values()),
                default_region=DEFAULT_REGION,
                fallback_ic_bps=_decimal(rates.fallback_interchange.bps),
                fallback_sf_bps=_decimal(rates.fallback_scheme_fee.bps),
                fallback_currency=list(rates.currencies),
                fallback_ic_fixed=[fallback_ic.fixed_in(c) for c in rates.currencies],
                fallback_sf_fixed=[fallback_sf.fixed_in(c) for c in rates.currencies],
            ),
            timeout=LONG_S,
        )
        return [
            ItemAggregates(
                settlement_id=r["settlement_id"],
                count=r["n"],
                gross_minor=r["gross"],
                refunds_minor=r["refunds"],
                fees=FeeTotals(
                    interchange_exact=_fraction(r["ic_x"]),
                    scheme_fee_exact=_fraction(r["sf_x"]),
                    markup_exact=_fraction(r["mk_x"]),
                    interchange_charged=r["ic"],
                    scheme_fee_charged=r["sf"],
                    markup_charged=r["mk"],
                ),
                net_minor=r["net"],
                flagged=r["flagged"],
                disputes_minor=r["disputes"],
                adjustments_minor=r["adjustments"],
                dispute_fees_minor=r["dispute_fees"],
            )
            for r in rows
        ]

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
    ) -> list[MerchantTerms]:
        rows = await conn_of(tx).fetch(
            "SELECT id, reserve, payout_delay_days FROM merchants WHERE id = ANY($1::text[])",
            list(merchant_ids),
        )
        terms = []
        for r in rows:
            reserve = (
                json.loads(r["reserve"]) if isinstance(r["reserve"], str) else dict(r["reserve"])
            )
            terms.append(
                MerchantTerms(
                    merchant_id=r["id"],
                    reserve_percent_bps=int(reserve.get("percent_bps", 0)),
                    reserve_hold_days=int(reserve.get("hold_days", 0)),
                    payout_delay_days=r["payout_delay_days"],
                )
            )
        return terms

    async def carried_in(
        self, tx: Transaction, pairs: Sequence[MerchantCurrency], before: date
    ) -> list[CarriedBalance]:
        rows = await conn_of(tx).fetch(
            _CARRIED_IN,
            *_carried.args(
                merchant_ids=[p.merchant_id for p in pairs],
                currencies=[p.currency for p in pairs],
                before=before,
            ),
        )
        return [CarriedBalance(r["merchant_id"], r["currency"], r["carried_out"]) for r in rows]

    async def releases_due(
        self, tx: Transaction, merchant_ids: Sequence[str], on: date
    ) -> list[ReserveHoldDue]:
        """The holds due on or before `on`, locked."""
        rows = await conn_of(tx).fetch(
            """SELECT settlement_id, merchant_id, currency, amount FROM reserve_holds
                WHERE merchant_id = ANY($1::text[]) AND released_by IS NULL AND release_on <= $2
                ORDER BY settlement_id FOR UPDATE""",
            list(merchant_ids),
            on,
        )
        return [
            ReserveHoldDue(r["settlement_id"], r["merchant_id"], r["currency"], r["amount"])
            for r in rows
        ]

    async def complete_settlements(
        self,
        tx: Transaction,
        totals: Sequence[SettlementTotals],
        holds: Sequence[ReserveHold],
        releases: Sequence[ReserveRelease],
        payouts: Sequence[NewPayout],
        now: datetime,
        repaid: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Record what netting returned; `repaid`: (failed payout, settlement repaying it)."""
        conn = conn_of(tx)
        columns = {column: [getattr(t, name) for t in totals] for column, name in _TOTAL_COLUMNS}
        await conn.execute(
            _UPDATE_TOTALS, *_totals.args(columns, id=[t.settlement_id for t in totals])
        )
        if holds:
            await conn.execute(
                _INSERT_HOLDS,
                *_holds.args(
                    settlement_ids=[h.settlement_id for h in holds],
                    merchant_ids=[h.merchant_id for h in holds],
                    currencies=[h.currency for h in holds],
                    amounts=[h.amount_minor for h in holds],
                    release_on=[h.release_on for h in holds],
                ),
            )
        if releases:
            await conn.execute(
                _RELEASE_HOLDS,
                *_releases.args(
                    held_by=[r.held_by for r in releases],
                    released_by=[r.released_by for r in releases],
                ),
            )
        if repaid:
            await conn.execute(
                _MARK_REPAID,
                *_repaid.args(ids=[p for p, _ in repaid], by=[s for _, s in repaid], now=now),
            )
        if payouts:
            await conn.execute(
                _INSERT_PAYOUTS,
                *_payouts.args(
                    ids=[p.id for p in payouts],
                    merchant_ids=[p.due.merchant_id for p in payouts],
                    settlement_ids=[p.due.settlement_id for p in payouts],
                    amounts=[p.due.amount_minor for p in payouts],
                    currencies=[p.due.currency for p in payouts],
                    arrival_dates=[p.due.arrival_date for p in payouts],
                    now=now,
                ),
            )
