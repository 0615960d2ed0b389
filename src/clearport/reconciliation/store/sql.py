"""The SQL of reconciliation: the columns it reads and writes, the rules a file's row must keep,
and the one set-based matching statement (per hash partition)."""

from __future__ import annotations

from clearport.reconciliation.formats import FileFormat, ReferenceKind

RUN_COLUMNS = (
    "id, connector, connector_type, file_id, file_sha256, period_start, period_end, lines, "
    "rejected, matched, missing_internal, missing_external, amount_mismatch, currency_mismatch, "
    "fee_difference, duplicate, matched_late, disputes_created, created_by, created_at"
)
EXCEPTION_COLUMNS = (
    "id, run_id, connector, kind, status, resolution, reference, network_case_id, line_number, "
    "line_count, "
    "item_type, item_id, merchant_id, currency, internal_amount, external_amount, "
    "external_currency, external_fee, expected_fee, difference, settlement_date, note, "
    "adjustment_id, balance_transaction, resolved_by, created_at, resolved_at"
)

# Exception ids like core.ids.new_id, made in SQL for rows that never pass through Python: the
# run's prefix and time (`$4`), then 16 Crockford characters of a random offset (`$5`) plus the
# row's number, so they are unique and in creation order.
ID_BODY = """(SELECT string_agg(substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ',
        (((r.n + $5::bigint) >> (5 * (15 - i))) & 31)::int + 1, 1), '' ORDER BY i)
        FROM generate_series(0, 15) AS i)"""


# Transactions are grouped by a 64-bit hash of (type, reference), not by the text: grouping 10 M
# fixed-width keys is several times cheaper than grouping strings, and a second, independent
# 64-bit hash of each row travels with it so that a group whose rows are not one transaction (a
# collision of the first hash) never looks clean: it is kept for a person to see, as a duplicate.
_H1 = "hashtextextended({key}, {seed})"
_H2 = "hashtextextended({key}, {seed} + 1000)"
_TYPE_SEED = "CASE {type} WHEN 'capture' THEN 1 WHEN 'refund' THEN 2 ELSE 3 END"
# What makes a row loadable but not acceptable: evaluated once per row as one boolean, and only
# for the (few) rows that fail it, the reason.
LINE_VALID = """(reference IS NOT NULL AND length(reference) <= 64
    AND type IN ('capture', 'refund', 'dispute') AND amount_minor > 0
    AND currency ~ '^[A-Za-z]{3}$'
    AND interchange_minor >= 0 AND scheme_fee_minor >= 0 AND processor_fee_minor >= 0
    AND fee_minor = interchange_minor + scheme_fee_minor + processor_fee_minor
    AND settlement_date IS NOT NULL
    AND (type = 'dispute') = (dispute_case_id IS NOT NULL)
    AND coalesce(length(dispute_case_id), 0) <= 64)"""
LINE_REASON = """CASE
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


def capture_key_sql(kind: ReferenceKind) -> str:
    return "p.network_reference" if kind is ReferenceKind.NETWORK_REFERENCE else "p.auth_attempt_id"


def _items_sql(fmt: FileFormat, part: str) -> str:
    """Clearport's side: one row per capture, successful refund and chargeback of the connector
    between the look-back start ($2) and the period's end ($3), of this partition."""
    capture_key = capture_key_sql(fmt.reference_kind)
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
       item_id, amount AS internal_amount, hashtext(currency) AS internal_currency,
       NULL::bigint AS external_amount, NULL::integer AS external_currency,
       NULL::bigint AS external_fee, NULL::date AS settlement_date, at AS occurred_at,
       NULL::text AS disputed_reference, NULL::text AS reason
  FROM (SELECT {h1} AS h1, {h2} AS h2, {item_id} AS item_id, {amount} AS amount,
               p.currency, {at} AS at
          FROM {table}
         WHERE {where} AND {at} >= $2 AND {at} < $3) AS i
 WHERE {part}""")
    return "\nUNION ALL".join(sides)


# Currencies are compared as integers: hashtext(lower(code)) is one-to-one over all 17,576
# three-letter codes (tests/integration/test_reconciliation.py checks it), and a row's currency
# is three letters or the row is rejected. The text is recovered from the integer for the few
# rows kept, by a join with every code (`CURRENCY_CODES`, 17,576 rows, hashed once).
CURRENCY_CODE = "hashtext(lower({currency}))"
CURRENCY_CODES = """SELECT hashtext(a || b || c) AS code, a || b || c AS currency FROM
    (SELECT chr(n) AS a FROM generate_series(97, 122) AS n) AS x,
    (SELECT chr(n) AS b FROM generate_series(97, 122) AS n) AS y,
    (SELECT chr(n) AS c FROM generate_series(97, 122) AS n) AS z"""
_LINE_KEY = "CASE WHEN type = 'dispute' THEN dispute_case_id ELSE reference END"


def stage_columns_sql(line_sequence: str) -> str:
    """A staging table's columns: the file's, its line number, and what the matching needs of
    each row computed as COPY writes it (generated columns: computed once, by the COPY streams
    running side by side, never again by each matching partition)."""
    h1, h2 = _hashes(_LINE_KEY, "type")
    return f"""reference text, type text, amount_minor bigint, currency text, fee_minor bigint,
    interchange_minor bigint, scheme_fee_minor bigint, processor_fee_minor bigint,
    settlement_date date, dispute_case_id text,
    line_number bigint NOT NULL DEFAULT nextval('{line_sequence}'),
    key_hash bigint GENERATED ALWAYS AS ({h1}) STORED,
    key_hash2 bigint GENERATED ALWAYS AS ({h2}) STORED,
    reason text GENERATED ALWAYS AS (CASE WHEN {LINE_VALID} THEN NULL ELSE {LINE_REASON} END)
        STORED,
    currency_code integer GENERATED ALWAYS AS ({CURRENCY_CODE.format(currency="currency")})
        STORED"""


STAGE_VIEW_COLUMNS = (
    "reference, type, amount_minor, currency, fee_minor, interchange_minor, scheme_fee_minor, "
    "processor_fee_minor, settlement_date, dispute_case_id, key_hash, key_hash2, reason, "
    "currency_code"
)


def _lines_sql(stage: str) -> str:
    """The file's rows of this partition ($6 of $7, by the first hash of the transaction; a row
    without one by its line number); a row whose values break a rule is a group of its own
    (`bad`, keyed by its line number) that says why."""
    return f"""
SELECT CASE WHEN reason IS NULL THEN key_hash ELSE line_number END AS h1,
       reason IS NOT NULL AS bad, key_hash2 AS h2, line_number,
       {_TYPE_SEED.format(type="type")} AS item_type, {_LINE_KEY} AS reference,
       NULL::text AS item_id, NULL::bigint AS internal_amount, NULL::integer AS internal_currency,
       amount_minor AS external_amount, currency_code AS external_currency,
       fee_minor AS external_fee, settlement_date, NULL::timestamptz AS occurred_at,
       CASE WHEN type = 'dispute' THEN reference END AS disputed_reference, reason
  FROM {stage}
 WHERE (coalesce(key_hash, line_number) & 1023) % $7 = $6"""


def match_sql(fmt: FileFormat, stage: str, results: str) -> str:
    """One partition ($6 of $7) of the one pass: group both sides by transaction; keep each
    group that is not a clean match (one row, one item, same currency, amount and agreed fee,
    never settled by an earlier run) and, of Clearport's unmatched items, those of the period
    ($4 on). $5: the periods earlier runs of the connector covered."""
    part = "(h1 & 1023) % $7 = $6"
    return f"""
INSERT INTO {results}
SELECT g.h1, (ARRAY['capture', 'refund', 'dispute'])[g.item_type], g.reference, g.line_count,
       g.line_number, g.item_count, g.item_id,
       g.internal_amount, g.internal_currency, g.external_amount, g.external_currency,
       g.external_fee, f.expected_fee, g.settlement_date, g.occurred_at, g.disputed_reference,
       g.reason,
       CASE WHEN g.bad THEN 'rejected'
            WHEN g.line_count = 0 THEN 'missing_external'
            WHEN g.item_count = 0 THEN 'missing_internal'
            WHEN g.line_count > 1 OR g.h2_min <> g.h2_max THEN 'duplicate'
            WHEN g.external_currency <> g.internal_currency THEN 'currency_mismatch'
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
       AND hashtext(f0.currency) = g.external_currency
  LEFT JOIN LATERAL (SELECT (g.external_amount * f0.percent_bps + 5000) / 10000 + f0.fixed_minor
                     AS expected_fee) AS f ON true
 WHERE g.bad OR (g.line_count = 0 AND g.occurred_at >= $4)
    OR (g.line_count > 0 AND NOT (g.line_count = 1 AND g.item_count = 1
        AND g.h2_min = g.h2_max
        AND g.external_currency = g.internal_currency
        AND g.external_amount = g.internal_amount
        AND g.external_fee = coalesce(f.expected_fee, g.external_fee)
        AND (g.occurred_at >= $4 OR NOT coalesce($5::tstzmultirange @> g.occurred_at, false))))
"""
