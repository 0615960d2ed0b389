"""API keys, failed-authentication counts and the processes' rate-limit shares in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from clearport.access.domain import ApiKey
from clearport.access.lockout import FailureCount, LockoutPolicy
from clearport.access.ports import KeyLookup
from clearport.core.errors import present
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import Database, conn_of
from clearport.db.pagination import fetch_page
from clearport.db.statements import Params, Table

API_KEYS = Table(
    "api_keys",
    (
        ("id", "text"),
        ("kind", "text"),
        ("merchant_id", "text"),
        ("role", "text"),
        ("mode", "text"),
        ("display", "text"),
        ("created_at", "timestamptz"),
        ("expires_at", "timestamptz"),
        ("revoked_at", "timestamptz"),
    ),
)
API_KEYS.check_matches(ApiKey)
_KEY_COLUMNS = API_KEYS.column_list()
# The secret's hash and who made the key are written, never read back into an ApiKey.
_INSERT_PARAMS = Params()
_INSERT = (
    f"INSERT INTO {API_KEYS.name} ({_KEY_COLUMNS}, secret_hash, created_by) "
    f"VALUES ({API_KEYS.values(_INSERT_PARAMS, 'key')}, "
    f"{_INSERT_PARAMS('secret_hash', 'bytea')}, {_INSERT_PARAMS('created_by', 'text')})"
)


def _key(row: asyncpg.Record) -> ApiKey:
    return API_KEYS.record(ApiKey, row)


# The key and the lockout in one round trip, so a successful authentication pays nothing for
# the lockout: always one row, its key columns NULL when no key has the hash (docs/decisions/0015).
_FIND_PARAMS = Params()
_FIND = (
    f"SELECT {', '.join(f'k.{c}' for c in API_KEYS.column_names)}, k.secret_hash, "
    "f.subject IS NOT NULL AS subject_locked, f.locked_until "
    "FROM (VALUES (1)) AS one (x) "
    f"LEFT JOIN {API_KEYS.name} k ON k.secret_hash = {_FIND_PARAMS('secret_hash', 'bytea')} "
    f"LEFT JOIN auth_failures f ON f.subject = {_FIND_PARAMS('subject', 'text')} "
    f"AND f.locked_until > {_FIND_PARAMS('at', 'timestamptz')}"
)


class PgApiKeyRepository:
    async def insert(
        self, tx: Transaction, key: ApiKey, secret_hash: bytes, created_by: str
    ) -> None:
        values = API_KEYS.named("key", API_KEYS.row(key))
        await conn_of(tx).execute(
            _INSERT, *_INSERT_PARAMS.args(values, secret_hash=secret_hash, created_by=created_by)
        )

    async def get(self, tx: Transaction, key_id: str) -> ApiKey | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id
        )
        return None if row is None else _key(row)

    async def find_by_hash(
        self, tx: Transaction, secret_hash: bytes, *, lockout_subject: str, at: datetime
    ) -> KeyLookup:
        row = present(
            await conn_of(tx).fetchrow(
                _FIND,
                *_FIND_PARAMS.args(secret_hash=secret_hash, subject=lockout_subject, at=at),
            ),
            "the lookup always returns its one row",
        )
        if row["id"] is None:
            return KeyLookup(None, None, row["subject_locked"], row["locked_until"])
        return KeyLookup(
            _key(row), bytes(row["secret_hash"]), row["subject_locked"], row["locked_until"]
        )

    async def get_by_hash(self, tx: Transaction, secret_hash: bytes) -> ApiKey | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE secret_hash = $1", secret_hash
        )
        return None if row is None else _key(row)

    async def revoke(self, tx: Transaction, key_id: str, at: datetime) -> None:
        await conn_of(tx).execute(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            key_id,
            at,
        )

    async def live_keys_exist(self, tx: Transaction) -> bool:
        """Any unrevoked live merchant key (webhooks refuse their loopback switch then)."""
        return bool(
            await conn_of(tx).fetchval(
                "SELECT EXISTS (SELECT 1 FROM api_keys WHERE mode = 'live' AND revoked_at IS NULL)"
            )
        )

    async def list_for_merchant(
        self, tx: Transaction, merchant_id: str, page: PageRequest
    ) -> Page[ApiKey]:
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {_KEY_COLUMNS} FROM api_keys",
            where=["merchant_id = $1"],
            args=[merchant_id],
            page=page,
            row_to=_key,
        )


def _after_failure(p: Params, failed_at: str, locked_until: str) -> str:
    """The row's (failed_at, locked_until, forget_after) once this failure is counted, from its
    previous `failed_at` and `locked_until`: the failures inside the window and not before the
    end of the last lockout, this one appended; a lockout if they reach the limit."""
    at = p("at", "timestamptz")
    window = f"make_interval(secs => {p('window_s', 'float8')})"
    lockout_end = f"{at} + make_interval(secs => {p('lockout_s', 'float8')})"
    locks = f"cardinality(next.failed_at) >= {p('max_failures', 'integer')}"
    return (
        f"SELECT next.failed_at, "
        f"CASE WHEN {locks} THEN {lockout_end} ELSE {locked_until} END, "
        f"CASE WHEN {locks} THEN {lockout_end} ELSE {at} + {window} END "
        f"FROM (SELECT array_append(ARRAY(SELECT t FROM unnest({failed_at}) AS t "
        f"WHERE t > {at} - {window} AND t >= coalesce({locked_until}, '-infinity') "
        f"ORDER BY t), {at}) AS failed_at"
        ") AS next"
    )


# One statement counts the failure: the upsert locks the subject's row, so concurrent failures
# from any number of processes are each counted once and exactly one of them locks it out. A
# subject already locked out is left alone (no row returned).
_COUNT_PARAMS = Params()
_AT = _COUNT_PARAMS("at", "timestamptz")
_COUNT = f"""
INSERT INTO auth_failures AS f (subject, failed_at, locked_until, forget_after)
SELECT {_COUNT_PARAMS("subject", "text")}, first.* FROM (
    {_after_failure(_COUNT_PARAMS, "'{}'::timestamptz[]", "NULL::timestamptz")}
) AS first (failed_at, locked_until, forget_after)
ON CONFLICT (subject) DO UPDATE SET (failed_at, locked_until, forget_after) = (
    {_after_failure(_COUNT_PARAMS, "f.failed_at", "f.locked_until")})
WHERE f.locked_until IS NULL OR f.locked_until <= {_AT}
RETURNING cardinality(failed_at) AS failures,
          CASE WHEN locked_until > {_AT} THEN locked_until END AS locked_until
"""
# Then at most two rows that no longer say anything go, so the table holds live subjects without
# a sweeper. A statement of its own, after the upsert: a transaction waits (for its subject's
# row) only before it holds any other row, and SKIP LOCKED never waits, so no deadlock.
_FORGET = """
DELETE FROM auth_failures WHERE subject IN (
    SELECT subject FROM auth_failures WHERE forget_after < $1
    ORDER BY forget_after LIMIT 2 FOR UPDATE SKIP LOCKED)
"""


class PgAuthFailureCounter:
    async def count_failure(
        self, tx: Transaction, subject: str, at: datetime, policy: LockoutPolicy
    ) -> FailureCount:
        conn = conn_of(tx)
        row = await conn.fetchrow(
            _COUNT,
            *_COUNT_PARAMS.args(
                subject=subject,
                at=at,
                window_s=float(policy.window_s),
                lockout_s=float(policy.lockout_s),
                max_failures=policy.max_failures,
            ),
        )
        await conn.execute(_FORGET, at)
        if row is None:
            return FailureCount(already_locked=True, failures=0, locked_until=None)
        return FailureCount(False, row["failures"], row["locked_until"])


# Writes this process's counts and reads the other processes' for the same windows, in one
# statement. Rows of other windows are ignored (a process that stopped leaves one stale row per
# key, overwritten when a process of the same name returns, or swept by `_SWEEP`).
_EXCHANGE = """
WITH mine AS (
    INSERT INTO rate_limit_shares AS s (key_id, process, window_start, count, updated_at)
    SELECT k, $2, w, c, now() FROM unnest($1::text[], $3::bigint[], $4::integer[]) AS t (k, w, c)
    ON CONFLICT (key_id, process) DO UPDATE
    SET window_start = EXCLUDED.window_start, count = EXCLUDED.count, updated_at = now()
)
SELECT t.k AS key_id, coalesce(sum(s.count), 0)::bigint AS others
  FROM unnest($1::text[], $3::bigint[]) AS t (k, w)
  LEFT JOIN rate_limit_shares s
    ON s.key_id = t.k AND s.window_start = t.w AND s.process <> $2
 GROUP BY t.k
"""
_SWEEP = "DELETE FROM rate_limit_shares WHERE updated_at < now() - interval '1 hour'"


class PgRateShares:
    """`rate_limit_shares` in PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def exchange(
        self, process: str, counts: Sequence[tuple[str, int, int]]
    ) -> dict[str, int]:
        """Store (key, window_start, count) for `process`; the other processes' total per key
        in the same window."""
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(
                _EXCHANGE,
                [c[0] for c in counts],
                process,
                [c[1] for c in counts],
                [c[2] for c in counts],
            )
        return {r["key_id"]: int(r["others"]) for r in rows}

    async def sweep(self) -> None:
        async with self._db.pool.acquire() as conn:
            await conn.execute(_SWEEP)
