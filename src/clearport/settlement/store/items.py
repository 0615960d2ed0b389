"""A partition's items in ONE pass (decision 0900): read its staged sources, price them, insert
the items, sum them per settlement, and stream the report lines out, all in one statement, so
each item is written once and never read back.

    COPY (WITH ... priced AS MATERIALIZED (...),
               items  AS (INSERT INTO settlement_items ... FROM priced),
               totals AS (INSERT INTO stl_partition_totals ... FROM priced GROUP BY settlement)
          SELECT <report line> FROM priced ORDER BY settlement_id, source_id) TO STDOUT

The per-settlement sums land in a temporary table (`stl_partition_totals`, emptied at commit)
that netting and the report's summary read in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from fractions import Fraction

from clearport.core.errors import InvariantViolation, invariant, present
from clearport.core.money import MAX_AMOUNT_MINOR
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.statements import Params
from clearport.settlement.domain import ItemAggregates, PartitionReportTotals, SettlementRun
from clearport.settlement.fees import BPS, COUNTRY_REGIONS, DEFAULT_REGION, FeeTotals, RateGrid
from clearport.settlement.store.runs import LONG_S

# A report line: the columns of settlement/report_files.COLUMNS, from an item row. The report
# written from committed rows (store/reports.py, after a crash) selects the same, in the same
# order, so both write the same bytes.
REPORT_LINE = (
    "settlement_id, merchant_id, payment_id, source_id, reference, type, brand, currency, gross, "
    "interchange, scheme_fee, markup, commission, net, flags"
)
# Byte order (COLLATE "C"): the same order for the platform's ASCII ids in every database,
# whatever its collation, and a sort by memcmp with abbreviated keys rather than strcoll per
# comparison (a libc collation such as C.UTF-8 gets neither: decision 0905).
REPORT_ORDER = 'settlement_id COLLATE "C", source_id COLLATE "C"'

_TOTALS_TABLE = """
CREATE TEMPORARY TABLE IF NOT EXISTS stl_partition_totals (
    settlement_id text PRIMARY KEY,
    n bigint, gross bigint, refunds bigint, disputes bigint, adjustments bigint,
    ic bigint, sf bigint, mk bigint, ic_x numeric, sf_x numeric, mk_x numeric,
    dispute_fees bigint, net bigint, flagged bigint
) ON COMMIT DELETE ROWS"""


def _half_even(units: str) -> str:
    """Half-even rounding, to whole minor units, of an exact fee given in bigint units of
    1 / unit_den minor unit (decision 0901): integer division, and the remainder against half
    the divisor; symmetric around zero, as settlement/fees.round_half_even."""
    den = _price("unit_den", "bigint")
    q, r = f"(abs({units}) / {den})", f"(abs({units}) % {den})"
    return (
        f"(sign({units}) * ({q} + CASE WHEN 2 * {r} > {den} "
        f"OR (2 * {r} = {den} AND {q} % 2 = 1) THEN 1 ELSE 0 END))"
    )


def _exact_units(scaled: str) -> str:
    """A numeric that must be a whole number of units as bigint; NULL when it is not."""
    return f"(SELECT CASE WHEN v = trunc(v) THEN v::bigint END FROM (VALUES ({scaled})) AS q(v))"


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
                         {_price("ic_units", "bigint[]")}, {_price("ic_fixed", "bigint[]")},
                         {_price("ic_flag", "boolean[]")}, {_price("sf_units", "bigint[]")},
                         {_price("sf_fixed", "bigint[]")}, {_price("sf_flag", "boolean[]")})
        AS r(brand, card_type, region, currency, ic_units, ic_fixed, ic_flag, sf_units,
             sf_fixed, sf_flag)
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
), terms AS MATERIALIZED (
    -- What a capture of each brand and card costs in each settlement, resolved once per
    -- settlement, brand, card type ('' when its BIN is not known) and interchange region (the
    -- acquiring one when the card was issued there or its issuer is not known, else
    -- inter-regional: settlement/fees.interchange_region): rates, fallbacks, overrides and
    -- flags, so that pricing an item is integer arithmetic on two numbers per fee rather than
    -- JSON, rate lookups and numeric arithmetic per item (decision 0901). A fee is counted in
    -- units of 1 / `unit_den` of a minor unit (unit_den = 10^(4 + K), K the decimal places of
    -- the finest rate): rate units = bps * 10^K, fixed units = fixed_minor * unit_den, so
    -- amount * rate units + fixed units is the exact fee, in bigint. A merchant rate finer than
    -- 10^-K bps has no exact integer form: its units are NULL and the items' insert fails
    -- (markup is NOT NULL) rather than rounding a rate.
    SELECT mp.settlement_id, b.brand, b.card_type, b.issuer_region, mp.icpp,
           coalesce(r.ic_units, {_price("fallback_ic_units", "bigint")}) AS ic_units,
           coalesce(r.ic_fixed, fb.ic_fixed, 0) * {_price("unit_den", "bigint")} AS ic_fixed_u,
           coalesce(r.sf_units, {_price("fallback_sf_units", "bigint")}) AS sf_units,
           coalesce(r.sf_fixed, fb.sf_fixed, 0) * {_price("unit_den", "bigint")} AS sf_fixed_u,
           {
    _exact_units(
        "CASE WHEN mp.overrides IS NOT NULL AND NOT mp.icpp AND mp.overrides ? b.brand "
        "THEN (mp.overrides -> b.brand ->> 'percent_bps')::numeric ELSE mp.bps END * "
        + _price("bps_scale", "bigint")
    )
} AS mk_units,
           CASE WHEN mp.overrides IS NOT NULL AND NOT mp.icpp AND mp.overrides ? b.brand
                THEN coalesce((mp.overrides -> b.brand -> 'fixed_minor' ->> b.currency)::bigint,
                              0)
                ELSE mp.fixed END * {_price("unit_den", "bigint")} AS mk_fixed_u,
           CASE WHEN NOT mp.icpp THEN ''
                ELSE concat_ws(',',
                    CASE WHEN coalesce(r.ic_flag, true) THEN 'interchange_fallback' END,
                    CASE WHEN coalesce(r.sf_flag, true) THEN 'scheme_fee_fallback' END) END
             AS flags
      FROM (SELECT DISTINCT s.merchant_id, s.currency, s.brand,
                            coalesce(s.card_type, '') AS card_type,
                            CASE WHEN s.issuer_country IS NULL THEN NULL
                                 ELSE coalesce(ir.region, {_price("default_region", "text")})
                            END AS issuer_region
              FROM settlement_sources s LEFT JOIN regions ir ON ir.country = s.issuer_country
             WHERE s.run_id = {_price("run_id")} AND s.partition = {_price("partition")}
               AND s.type = 'capture') b
      JOIN mp ON mp.merchant_id = b.merchant_id AND mp.currency = b.currency
      LEFT JOIN rates r
             ON r.brand = b.brand AND r.card_type = b.card_type
            AND r.region = CASE WHEN b.issuer_region IS NULL OR b.issuer_region = mp.region
                                THEN mp.region ELSE {_price("default_region", "text")} END
            AND r.currency = b.currency
      LEFT JOIN fallback fb ON fb.currency = b.currency
), exact AS (
    -- OFFSET 0 (here and in `priced`) keeps each level a subquery of its own, so each fee's
    -- units and its rounding are computed once per item: flattened, the planner substitutes
    -- the expressions, and the half-even rounding of three fees (each naming its units seven
    -- times) was re-evaluated for the commission and the net too (decision 0906).
    SELECT s.source_id, s.transfer_id, s.type, s.merchant_id, s.currency, s.amount,
           s.created_at, s.payment_id, s.reference, s.brand, mp.settlement_id,
        CASE WHEN s.type <> 'capture' OR NOT t.icpp THEN 0::bigint
             ELSE s.amount * t.ic_units + t.ic_fixed_u END AS ic_u,
        CASE WHEN s.type <> 'capture' OR NOT t.icpp THEN 0::bigint
             ELSE s.amount * t.sf_units + t.sf_fixed_u END AS sf_u,
        CASE WHEN s.type = 'dispute' THEN s.fee * {_price("unit_den", "bigint")}
             WHEN s.type = 'dispute_reversal' THEN -s.fee * {_price("unit_den", "bigint")}
             WHEN s.type <> 'capture' THEN 0::bigint
             ELSE s.amount * t.mk_units + t.mk_fixed_u END AS mk_u,
        CASE WHEN s.type <> 'capture' THEN '' ELSE t.flags END AS flags
      FROM settlement_sources s
      JOIN mp ON mp.merchant_id = s.merchant_id AND mp.currency = s.currency
      LEFT JOIN regions sr ON sr.country = s.issuer_country
      LEFT JOIN terms t ON t.settlement_id = mp.settlement_id AND t.brand = s.brand
            AND t.card_type = coalesce(s.card_type, '')
            AND t.issuer_region IS NOT DISTINCT FROM CASE WHEN s.issuer_country IS NULL
                THEN NULL ELSE coalesce(sr.region, {_price("default_region", "text")}) END
     WHERE s.run_id = {_price("run_id")} AND s.partition = {_price("partition")}
    OFFSET 0
), priced AS MATERIALIZED (
    SELECT settlement_id, merchant_id, payment_id, source_id, reference, type, brand, currency,
           gross, ic AS interchange, sf AS scheme_fee, mk AS markup, ic + sf + mk AS commission,
           gross - (ic + sf + mk) AS net, flags, transfer_id, created_at, amount, ic_u, sf_u, mk_u
      FROM (SELECT exact.*,
                   {_half_even("ic_u")} AS ic, {_half_even("sf_u")} AS sf,
                   {_half_even("mk_u")} AS mk,
                   CASE WHEN type IN ('capture', 'dispute_reversal', 'adjustment') THEN amount
                        ELSE -amount END AS gross
              FROM exact OFFSET 0) e
), items AS (
    INSERT INTO settlement_items (source_id, settlement_id, transfer_id, merchant_id, payment_id,
        reference, type, brand, currency, gross, interchange, scheme_fee, markup, commission, net,
        flags, created_at, business_date)
    SELECT source_id, settlement_id, transfer_id, merchant_id, payment_id, reference, type, brand,
           currency, gross, interchange, scheme_fee, markup, commission, net, flags, created_at,
           {_price("business_date", "date")}
      FROM priced
), totals AS (
    INSERT INTO stl_partition_totals
    SELECT settlement_id, count(*),
           coalesce(sum(amount) FILTER (WHERE type = 'capture'), 0),
           coalesce(sum(amount) FILTER (WHERE type = 'refund'), 0),
           coalesce(sum(amount) FILTER (WHERE type = 'dispute'), 0)
             - coalesce(sum(amount) FILTER (WHERE type = 'dispute_reversal'), 0),
           coalesce(sum(amount) FILTER (WHERE type = 'adjustment'), 0),
           coalesce(sum(interchange) FILTER (WHERE type = 'capture'), 0),
           coalesce(sum(scheme_fee) FILTER (WHERE type = 'capture'), 0),
           coalesce(sum(markup) FILTER (WHERE type = 'capture'), 0),
           coalesce(sum(ic_u) FILTER (WHERE type = 'capture'), 0) * {_price("unit", "numeric")},
           coalesce(sum(sf_u) FILTER (WHERE type = 'capture'), 0) * {_price("unit", "numeric")},
           coalesce(sum(mk_u) FILTER (WHERE type = 'capture'), 0) * {_price("unit", "numeric")},
           coalesce(sum(markup) FILTER (WHERE type <> 'capture'), 0),
           sum(net), count(*) FILTER (WHERE flags <> '')
      FROM priced GROUP BY settlement_id
)
SELECT {REPORT_LINE} FROM priced ORDER BY {REPORT_ORDER}"""

# The partition's report summary: its items' sums (from the same pass) beside its settlements'
# net, which netting wrote from those sums (the report check compares the two).
_REPORT_TOTALS = """
SELECT coalesce(sum(n), 0) AS count, coalesce(sum(gross), 0) AS gross_minor,
       coalesce(sum(refunds), 0) AS refunds_minor, coalesce(sum(disputes), 0) AS disputes_minor,
       coalesce(sum(adjustments), 0) AS adjustments_minor,
       coalesce(sum(ic), 0) AS interchange_minor, coalesce(sum(sf), 0) AS scheme_fee_minor,
       coalesce(sum(mk + dispute_fees), 0) AS markup_minor,
       coalesce(sum(ic + sf + mk + dispute_fees), 0) AS commission_minor,
       coalesce(sum(net), 0) AS net_minor, coalesce(sum(flagged), 0) AS flagged,
       (SELECT count(*) FROM settlements x WHERE x.run_id = $1 AND x.partition = $2)
         AS settlements,
       (SELECT coalesce(sum(x.gross - x.refunds - x.disputes + x.adjustments - x.fees), 0)
          FROM settlements x WHERE x.run_id = $1 AND x.partition = $2) AS settlements_net_minor
  FROM stl_partition_totals"""


# A rate finer than this many decimal places of a basis point is refused (decision 0901).
MAX_RATE_DECIMALS = 6
_BIGINT_MAX = 2**63 - 1


def rate_decimals(rates: RateGrid) -> int:
    """K: the decimal places of the grid's finest rate (bps), so every rate times 10^K is a
    whole number; the merchants' own rates are whole bps (the API's schema)."""
    bps = [r.interchange.bps for r in rates.rates] + [r.scheme_fee.bps for r in rates.rates]
    bps += [rates.fallback_interchange.bps, rates.fallback_scheme_fee.bps]
    for k in range(MAX_RATE_DECIMALS + 1):
        if all((b * 10**k).denominator == 1 for b in bps):
            return k
    raise InvariantViolation(
        f"interchange and scheme-fee rates have at most {MAX_RATE_DECIMALS} decimal places of "
        "a basis point"
    )


def exact_minor(numeric_text: str) -> Fraction:
    """An exact fee sum as PostgreSQL writes a numeric ("-1234.56780000": digits, at most one
    point, no exponent) as the Fraction it is: the digits over the power of ten of its scale.
    Fraction(Decimal(text)) gives the same value at ~3x the cost (an ABC check and a Decimal
    per value, three per settlement)."""
    whole, _, decimals = numeric_text.partition(".")
    return Fraction(int(whole + decimals), 10 ** len(decimals))


def _units(bps: Fraction, scale: int) -> int:
    value = bps * scale
    invariant(value.denominator == 1, "a rate is a whole number of units")
    return int(value)


class PgItemStore:
    async def price_items(
        self,
        tx: Transaction,
        run: SettlementRun,
        partition: int,
        rates: RateGrid,
        report: Callable[[bytes], Awaitable[None]],
    ) -> list[ItemAggregates]:
        """Insert the partition's items, priced, streaming their report lines (CSV) to `report`;
        returns the aggregates of each settlement."""
        conn = conn_of(tx)
        grid = rates.rates
        fallback_ic, fallback_sf = rates.fallback_interchange, rates.fallback_scheme_fee
        k = rate_decimals(rates)
        bps_scale, unit_den = 10**k, BPS * 10**k
        # Every item's fee in units must fit a bigint: the largest amount at the largest rate
        # (a merchant's is at most 100 %) plus the largest fixed part (an overflow would fail the
        # statement, loudly; this says why before it runs).
        largest_units = max(
            [
                BPS * bps_scale,
                _units(fallback_ic.bps, bps_scale),
                _units(fallback_sf.bps, bps_scale),
            ]
            + [_units(r.interchange.bps, bps_scale) for r in grid]
            + [_units(r.scheme_fee.bps, bps_scale) for r in grid]
        )
        invariant(
            MAX_AMOUNT_MINOR * largest_units + MAX_AMOUNT_MINOR * unit_den <= _BIGINT_MAX,
            f"fees in units of 10^-{4 + k} minor unit fit a bigint",
        )
        # Room to sort and hash a partition's items in memory (the default 4 MB spills).
        await conn.execute("SET LOCAL work_mem = '256MB'")
        # Hash joins only, for this statement: the partition's settlements were inserted by this
        # transaction, so the statistics know none of them, the planner expects one settlement
        # and one item, and loops over the whole rate grid (1,088 rows) for every item instead
        # of hashing it: 59 of 61 s for a partition of 129,299 items, measured (decision 0900).
        await conn.execute("SET LOCAL enable_nestloop = off")
        await conn.execute(_TOTALS_TABLE)

        async def output(data: bytes) -> None:
            await report(data)

        await conn.copy_from_query(
            _PRICE_ITEMS,
            *_price.args(
                run_id=run.id,
                partition=partition,
                business_date=run.business_date,
                brand=[r.brand for r in grid],
                card_type=[r.card_type for r in grid],
                region=[r.region for r in grid],
                currency=[r.currency for r in grid],
                ic_units=[_units(r.interchange.bps, bps_scale) for r in grid],
                ic_fixed=[r.interchange.fixed_in(r.currency) for r in grid],
                ic_flag=[r.interchange_fallback for r in grid],
                sf_units=[_units(r.scheme_fee.bps, bps_scale) for r in grid],
                sf_fixed=[r.scheme_fee.fixed_in(r.currency) for r in grid],
                sf_flag=[r.scheme_fee_fallback for r in grid],
                countries=list(COUNTRY_REGIONS),
                country_regions=list(COUNTRY_REGIONS.values()),
                default_region=DEFAULT_REGION,
                fallback_ic_units=_units(fallback_ic.bps, bps_scale),
                fallback_sf_units=_units(fallback_sf.bps, bps_scale),
                bps_scale=bps_scale,
                unit_den=unit_den,
                unit=Decimal(1).scaleb(-(4 + k)),
                fallback_currency=list(rates.currencies),
                fallback_ic_fixed=[fallback_ic.fixed_in(c) for c in rates.currencies],
                fallback_sf_fixed=[fallback_sf.fixed_in(c) for c in rates.currencies],
            ),
            output=output,
            format="csv",
            timeout=LONG_S,
        )
        await conn.execute("RESET enable_nestloop")
        rows = await conn.fetch(
            "SELECT settlement_id, n, gross, refunds, disputes, adjustments, ic, sf, mk, "
            "ic_x::text, sf_x::text, mk_x::text, dispute_fees, net, flagged "
            "FROM stl_partition_totals ORDER BY settlement_id"
        )
        return [
            ItemAggregates(
                settlement_id=r["settlement_id"],
                count=r["n"],
                gross_minor=r["gross"],
                refunds_minor=r["refunds"],
                fees=FeeTotals(
                    interchange_exact=exact_minor(r["ic_x"]),
                    scheme_fee_exact=exact_minor(r["sf_x"]),
                    markup_exact=exact_minor(r["mk_x"]),
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

    async def priced_report_totals(
        self, tx: Transaction, run_id: str, partition: int
    ) -> PartitionReportTotals:
        """The summary of the report `price_items` streamed, in its transaction, after the
        partition's settlements were netted."""
        row = await conn_of(tx).fetchrow(_REPORT_TOTALS, run_id, partition)
        return PartitionReportTotals(
            **{k: int(v) for k, v in present(row, "aggregates return one row").items()}
        )
