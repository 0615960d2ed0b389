"""The SQL of reconciliation: the columns it reads and writes, the rules a file's row must keep,
and the matching's two passes: a sketch over every row (each connection its share of the rows)
whose non-zero cells hold the transactions that may be exceptions, and a close pass over those
cells' rows only (docs/decisions/0711)."""

from __future__ import annotations

from clearport.core.money import MAX_AMOUNT_MINOR
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
# Every amount is bounded as payments are (MAX_AMOUNT_MINOR) before any arithmetic on it: a
# bigint COPY accepts may overflow a sum or a fee computed from it. (A CASE, since the order in
# which AND evaluates its operands is not defined.)
_FEES_BOUNDED = f"""(interchange_minor BETWEEN 0 AND {MAX_AMOUNT_MINOR}
    AND scheme_fee_minor BETWEEN 0 AND {MAX_AMOUNT_MINOR}
    AND processor_fee_minor BETWEEN 0 AND {MAX_AMOUNT_MINOR}
    AND fee_minor BETWEEN 0 AND {MAX_AMOUNT_MINOR})"""
# At most 64 characters, counted only when the bytes do not settle it (counting characters was
# a twentieth of the first pass).
_AT_MOST_64 = "(octet_length({text}) <= 64 OR length({text}) <= 64)"
LINE_VALID = f"""(reference IS NOT NULL AND {_AT_MOST_64.format(text="reference")}
    AND type IN ('capture', 'refund', 'dispute')
    AND amount_minor BETWEEN 1 AND {MAX_AMOUNT_MINOR}
    AND currency ~ '^[A-Za-z]{{3}}$'
    AND CASE WHEN {_FEES_BOUNDED}
             THEN fee_minor = interchange_minor + scheme_fee_minor + processor_fee_minor
             ELSE false END
    AND settlement_date IS NOT NULL
    AND (type = 'dispute') = (dispute_case_id IS NOT NULL)
    AND (dispute_case_id IS NULL OR {_AT_MOST_64.format(text="dispute_case_id")}))"""
# The first pass's check: LINE_VALID but for the currency's letters (three bytes suffice there:
# a row whose currency is three other characters cannot cancel an item's element, whose code is
# three letters, but by a 64-bit coincidence, so its cell goes to the second pass, which applies
# LINE_VALID itself). The regular expression was a third of the first pass's cost per row.
_LINE_ROUGHLY_VALID = LINE_VALID.replace("currency ~ '^[A-Za-z]{3}$'", "octet_length(currency) = 3")
if _LINE_ROUGHLY_VALID == LINE_VALID:  # pragma: no cover - a guard against an edit of LINE_VALID
    raise RuntimeError("the first pass's rule check must drop LINE_VALID's currency pattern")
LINE_REASON = f"""CASE
    WHEN reference IS NULL OR length(reference) > 64
        THEN 'reference is required, at most 64 characters'
    WHEN type IS NULL OR type NOT IN ('capture', 'refund', 'dispute')
        THEN 'type must be capture, refund or dispute'
    WHEN amount_minor IS NULL OR amount_minor NOT BETWEEN 1 AND {MAX_AMOUNT_MINOR}
        THEN 'amount_minor must be positive, at most {MAX_AMOUNT_MINOR}'
    WHEN currency IS NULL OR currency !~ '^[A-Za-z]{{3}}$'
        THEN 'currency must be a three-letter ISO 4217 code'
    WHEN {_FEES_BOUNDED} IS NOT TRUE
        THEN 'fees are required, not negative, at most {MAX_AMOUNT_MINOR}'
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


_ITEM_SOURCES = (
    # item type, table, item id, amount, when, which rows (the key is the file's reference kind)
    ("capture", "payments p", "p.id", "p.amount_captured", "p.captured_at",
     "p.connector = $1 AND p.amount_captured > 0"),
    ("refund", "payment_attempts p", "p.refund_id", "p.amount", "p.completed_at",
     "p.operation = 'refund' AND p.status = 'succeeded' AND p.connector = $1"),
    ("dispute", "disputes p", "p.id", "p.amount", "p.created_at",
     "p.connector = $1 AND NOT p.inquiry AND p.network_case_id IS NOT NULL"),
)  # fmt: skip


def _item_key(fmt: FileFormat, item_type: str) -> str:
    if item_type == "capture":
        return _capture_key_sql(fmt.reference_kind)
    return "p.id" if item_type == "refund" else "p.network_case_id"


# Each item table's share of heap blocks, [low, high), as parameters of a statement that reads
# one connection's share of the rows.
_BLOCKS = {"payments": ("$4", "$5"), "payment_attempts": ("$6", "$7"), "disputes": ("$8", "$9")}


# An item the processor cannot name (a capture without a network reference, on a format that
# names captures by it) is its own transaction, keyed by its id under a seed no file row uses:
# it cancels nothing, so it is collected and reported missing_external, never silently skipped.
_UNNAMED_SEED = 4


def _item_hashes(fmt: FileFormat, item_type: str, item_id: str) -> tuple[str, str]:
    h1, h2 = _hashes(_item_key(fmt, item_type), f"'{item_type}'")
    u1, u2 = (h.format(key=item_id, seed=_UNNAMED_SEED) for h in (_H1, _H2))
    return f"coalesce({h1}, {u1})", f"coalesce({h2}, {u2})"


def _item_shown(fmt: FileFormat, item_type: str) -> str:
    """How an exception shows an item: by the reference the processor knows it by, or, for a
    capture the processor cannot name, by Clearport's own."""
    if item_type == "capture":
        return f"coalesce({_item_key(fmt, item_type)}, p.auth_attempt_id, p.id)"
    return _item_key(fmt, item_type)


def _in_blocks(table: str) -> str:
    low, high = _BLOCKS[table.split(maxsplit=1)[0]]
    return f"p.ctid >= {low}::tid AND p.ctid < {high}::tid"


def _items_sql(fmt: FileFormat, where: str, *, share: bool = False) -> str:
    """Clearport's side: one row per capture, successful refund and chargeback of the connector
    from $2 to $3 whose first hash `h1` passes `where` (`share`: in the heap blocks of $4 to
    $9)."""
    sides = []
    for item_type, table, item_id, amount, at, which in _ITEM_SOURCES:
        h1, h2 = _item_hashes(fmt, item_type, item_id)
        blocks = f" AND {_in_blocks(table)}" if share else ""
        sides.append(f"""
SELECT h1, false AS bad, h2, NULL::bigint AS line_number,
       {_TYPE_SEED.format(type=repr(item_type))} AS item_type,
       NULL::text AS reference,
       item_id, amount AS internal_amount, hashtext(currency) AS internal_currency,
       NULL::bigint AS external_amount, NULL::integer AS external_currency,
       NULL::bigint AS external_fee, NULL::date AS settlement_date, at AS occurred_at,
       NULL::text AS disputed_reference, NULL::text AS reason,
       merchant_id, currency AS item_currency, item_key
  FROM (SELECT {h1} AS h1, {h2} AS h2, {item_id} AS item_id, {amount} AS amount,
               p.currency, {at} AS at, p.merchant_id, {_item_shown(fmt, item_type)} AS item_key
          FROM {table}
         WHERE {which} AND {at} >= $2 AND {at} < $3{blocks}) AS i
 WHERE {where}""")
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
    """A staging table's columns: the file's and its line number, fixed-width ones first (COPY
    names its columns, so the order is free: a pass reads a row's fixed-width columns at fixed
    offsets before the first text one). Nothing else is computed as COPY writes a row: a
    generated column costs COPY more than a pass costs to compute the same value (measured: a
    key hash at COPY +30 % of its CPU; the same hash in a scan, a few %)."""
    return f"""line_number bigint NOT NULL DEFAULT nextval('{line_sequence}'),
    amount_minor bigint, fee_minor bigint, interchange_minor bigint, scheme_fee_minor bigint,
    processor_fee_minor bigint, settlement_date date,
    reference text, type text, currency text, dispute_case_id text"""


STAGE_VIEW_COLUMNS = (
    "reference, type, amount_minor, currency, fee_minor, interchange_minor, scheme_fee_minor, "
    "processor_fee_minor, settlement_date, dispute_case_id"
)


# A file row's first hash (its group key when its values keep the rules).
_LINE_H1 = _hashes(_LINE_KEY, "type")[0]


# A file row's second hash and currency code, computed where the close pass reads the row.
_LINE_H2 = _hashes(_LINE_KEY, "type")[1]
_LINE_CURRENCY = CURRENCY_CODE.format(currency="currency")
# A file row's key in the first pass: its transaction's hash, or its line number when it names
# no transaction (no reference, or no type). Every row of a transaction has the same key, so
# all of them fall in one cell of the sketch.
_LINE_SKETCH_KEY = f"coalesce({_LINE_H1}, line_number)"
# A file row that cannot be half of a clean match (it breaks a rule, or its fee is not the
# agreed one) mixes this into its element, so that it cancels no item.
_LINE_NOT_OK = 4417624873929117297
# `code`: the row's currency, hashed to 64 bits once (the fee schedule's look-up uses it too).
# Lower-cased by byte (COLLATE "C"): a code is three ASCII letters or the row is rejected, and
# the locale's lower() was a twentieth of the pass.
_LINE_CODE = 'hashtextextended(lower(currency COLLATE "C"), 0)'
# The sketch's element of a row: a 64-bit hash of what both sides must agree on (the
# transaction, the amount, the currency; for a file row also whether it keeps every rule and its
# fee), the same for a file row and the item it settles.
_LINE_ELEMENT = (
    "hashint8extended(coalesce(amount_minor, 0), k # coalesce(code, 0) "
    "# CASE WHEN coalesce(valid AND {fee_agreed}, false) THEN 0 ELSE "
    f"{_LINE_NOT_OK} END)"
)
_ITEM_ELEMENT = "hashint8extended(amount, k # hashtextextended(currency, 0))"
# The element is counted as two 31-bit halves, file rows added and items subtracted: a cell's
# sums are zero when its rows and items are the same multiset of elements, and otherwise but by
# a 62-bit coincidence. (Sums, not xors: a row present twice must not cancel itself. Two int4
# halves, because sum(int4) keeps a bigint state in place; a bigint sum would be numeric.)
_LOW, _HIGH = "(e & 2147483647)::int", "((e >> 32) & 2147483647)::int"


def _lines_sql(stage: str, where: str) -> str:
    """The file's rows that pass `where` (a condition on the row's sketch key `k`); a row
    whose values break a rule is a group of its own (`bad`, keyed by its line number) that says
    why."""
    return f"""
SELECT h1, reason IS NOT NULL AS bad, {_LINE_H2} AS h2, line_number,
       {_TYPE_SEED.format(type="type")} AS item_type, {_LINE_KEY} AS reference,
       NULL::text AS item_id, NULL::bigint AS internal_amount, NULL::integer AS internal_currency,
       amount_minor AS external_amount, {_LINE_CURRENCY} AS external_currency,
       fee_minor AS external_fee, settlement_date, NULL::timestamptz AS occurred_at,
       CASE WHEN type = 'dispute' THEN reference END AS disputed_reference, reason,
       NULL::text AS merchant_id, NULL::text AS item_currency, NULL::text AS item_key
  FROM (SELECT *, CASE WHEN reason IS NULL THEN {_LINE_H1} ELSE line_number END AS h1
          FROM (SELECT *, CASE WHEN {LINE_VALID} THEN NULL ELSE {LINE_REASON} END AS reason
                  FROM (SELECT *, {_LINE_SKETCH_KEY} AS k FROM {stage}) AS s
                 WHERE {where}) AS s) AS s"""


def fee_agreed_sql(schedules: list[tuple[int, int, int]]) -> str:
    """Whether a file row's fee is the agreed one (`code`: its currency's 64-bit hash): by the
    connector's schedule for the row's currency (code, percent in basis points, fixed minor
    units: integers read from the database), and any fee where the currency has none. Written
    out as literals: the check runs on every row, and a join per row costs more than the rest
    of the row's work."""
    cases = " ".join(
        f"WHEN {int(code)} THEN fee_minor = (amount_minor * {int(bps)} + 5000) / 10000 "
        f"+ {int(fixed)}"
        for code, bps, fixed in schedules
    )
    return f"CASE code {cases} ELSE true END" if cases else "true"


def sketch_cells(lines: int) -> int:
    """The sketch's cells for a file of `lines` rows: a power of two, about one per 32 rows, at
    most 2^19. Fewer cells make a smaller hash table (~100 bytes a cell; cache misses were 40 %
    of the pass at 2^20 cells) and more rows for the close pass to read per candidate cell (~75
    of both sides at 2^19); at 10 M, 2^19 took less time end to end than 2^20 and 2^18."""
    return 1 << min(max((lines // 32).bit_length(), 10), 19)


def _cell(key: str, cells: int) -> str:
    """A transaction's cell: one expression for the sketch and for the close pass that finds the
    cell's rows again, so the two cannot disagree."""
    return f"({key} & {cells - 1})::int"


def sketch_sql(fmt: FileFormat, stage_part: str, sketch: str, cells: int, fee_agreed: str) -> str:
    """The first pass over one connection's share of the rows: the staged part `stage_part`,
    and the items of the period ($2 to $3, connector $1) in the heap blocks [$4, $5) of
    `payments`, [$6, $7) of `payment_attempts` and [$8, $9) of `disputes` (each connection reads
    its blocks under one exported snapshot). Each row adds its element to its transaction's
    cell (`cells`, a power of two); the partial sums go to `sketch`, where the connections'
    shares add up. (`OFFSET 0` keeps a row's values computed once, not once per use; the
    element's two halves are not worth a layer of their own: measured, a layer cost more.)"""
    sides = [
        f"""
SELECT k, {_LINE_ELEMENT.format(fee_agreed=fee_agreed)} AS e, 1 AS sign
  FROM (SELECT {_LINE_SKETCH_KEY} AS k, amount_minor, fee_minor,
               {_LINE_ROUGHLY_VALID} AS valid, {_LINE_CODE} AS code
          FROM {stage_part} OFFSET 0) AS s"""
    ]
    for item_type, table, item_id, amount, at, which in _ITEM_SOURCES:
        key = _item_hashes(fmt, item_type, item_id)[0]
        sides.append(f"""
SELECT k, {_ITEM_ELEMENT} AS e, -1 AS sign
  FROM (SELECT {key} AS k, {amount} AS amount, p.currency
          FROM {table}
         WHERE {which} AND {at} >= $2 AND {at} < $3 AND {_in_blocks(table)}
        OFFSET 0) AS i""")
    return f"""
INSERT INTO {sketch} (cell, lo, hi)
SELECT {_cell("k", cells)}, sum(sign * {_LOW}), sum(sign * {_HIGH})
  FROM ({" UNION ALL ".join(sides)}) AS u
 GROUP BY 1"""


def candidate_cells_sql(sketch: str, candidates: str, part: int, parts: int) -> str:
    """The cells whose sums the connections' shares leave non-zero: every transaction that is
    not a clean match is in one of them (this connection's `part` of the cells)."""
    return f"""INSERT INTO {candidates} (cell)
SELECT cell FROM {sketch} WHERE cell % {parts} = {part}
 GROUP BY cell HAVING sum(lo) <> 0 OR sum(hi) <> 0"""


def collect_lines_sql(stage: str, candidates: str, rows: str, cells: int) -> str:
    """The second pass, the file's side: every row of the candidate cells, in full."""
    where = f"{_cell('k', cells)} IN (SELECT cell FROM {candidates})"
    return f"INSERT INTO {rows} {_lines_sql(stage, where)}"


def collect_items_sql(fmt: FileFormat, candidates: str, rows: str, cells: int) -> str:
    """The second pass, Clearport's side: the items of the period ($2, connector $1, to the
    period's end $3) in the candidate cells, of one connection's share of the blocks ($4-$9)."""
    where = f"{_cell('h1', cells)} IN (SELECT cell FROM {candidates})"
    return f"INSERT INTO {rows} {_items_sql(fmt, where, share=True)}"


def collect_earlier_items_sql(fmt: FileFormat, rows: str) -> str:
    """The second pass, Clearport's side before the period ($2 from the look-back start to the
    period's start $3): the items the collected file rows name (a late settlement, or one settled
    already), which the sketch did not hold."""
    keys = f"(SELECT h1 FROM {rows} WHERE line_number IS NOT NULL AND NOT bad)"
    return f"INSERT INTO {rows} {_items_sql(fmt, f'h1 IN {keys}')}"


ROWS_COLUMNS_SQL = """h1 bigint, bad boolean, h2 bigint, line_number bigint, item_type integer,
    reference text, item_id text, internal_amount bigint, internal_currency integer,
    external_amount bigint, external_currency integer, external_fee bigint,
    settlement_date date, occurred_at timestamptz, disputed_reference text, reason text,
    merchant_id text, item_currency text, item_key text"""
# The results: a row per transaction kept.
RESULTS_COLUMNS_SQL = """h1 bigint, item_type text, reference text, line_count bigint,
    line_number bigint, item_count bigint, item_id text, internal_amount bigint,
    internal_currency integer, external_amount bigint, external_currency integer,
    external_fee bigint, expected_fee bigint, settlement_date date, occurred_at timestamptz,
    disputed_reference text, reason text, kind text"""


def match_sql(rows: str, results: str, part: int, parts: int) -> str:
    """The candidate groups' rows grouped by transaction, each group that is not a clean match
    (one row, one item, same currency, amount and agreed fee, never settled by an earlier run)
    classified and kept and, of Clearport's unmatched items, those of the period ($2 on).
    $1: the connector (its fee schedule); $3: the periods earlier runs of the connector
    covered. This connection's `part` of the transactions (by their hash), of `parts`."""
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
          FROM {rows} AS u
         WHERE abs(u.h1 % {parts}) = {part}
         GROUP BY u.h1, u.bad) AS g
  LEFT JOIN reconciliation_fee_schedules f0 ON f0.connector = $1
       AND hashtext(f0.currency) = g.external_currency
  LEFT JOIN LATERAL (SELECT CASE WHEN NOT g.bad
                     THEN (g.external_amount * f0.percent_bps + 5000) / 10000 + f0.fixed_minor
                     END AS expected_fee) AS f ON true
 WHERE g.bad OR (g.line_count = 0 AND g.occurred_at >= $2)
    OR (g.line_count > 0 AND NOT (g.line_count = 1 AND g.item_count = 1
        AND g.h2_min = g.h2_max
        AND g.external_currency = g.internal_currency
        AND g.external_amount = g.internal_amount
        AND g.external_fee = coalesce(f.expected_fee, g.external_fee)
        AND (g.occurred_at >= $2 OR NOT coalesce($3::tstzmultirange @> g.occurred_at, false))))
"""
