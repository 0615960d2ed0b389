"""API keys and rate-limit counters in PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from clearport.access.domain import ApiKey
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
        self, tx: Transaction, secret_hash: bytes
    ) -> tuple[ApiKey, bytes] | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {_KEY_COLUMNS}, secret_hash FROM api_keys WHERE secret_hash = $1",
            secret_hash,
        )
        return None if row is None else (_key(row), bytes(row["secret_hash"]))

    async def revoke(self, tx: Transaction, key_id: str, at: datetime) -> None:
        await conn_of(tx).execute(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            key_id,
            at,
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


# Window boundaries come from the database clock so processes with skewed clocks agree.
_HIT = """
WITH now_s AS (SELECT extract(epoch FROM clock_timestamp()) AS t)
INSERT INTO rate_limit_counters AS c (key_id, window_start, count)
SELECT $1::text, (floor((SELECT t FROM now_s) / $2::int) * $2::int)::bigint, 1
ON CONFLICT (key_id) DO UPDATE
SET count = CASE WHEN c.window_start = EXCLUDED.window_start THEN c.count + 1 ELSE 1 END,
    window_start = EXCLUDED.window_start
RETURNING count, ceil(window_start + $2::int - (SELECT t FROM now_s))::int AS remaining_s
"""


class PgRateLimiter:
    def __init__(self, db: Database, *, limit: int, window_s: int) -> None:
        self._db = db
        self._limit = limit
        self._window_s = window_s

    async def hit(self, key_id: str) -> int | None:
        async with self._db.pool.acquire() as conn:
            row = present(
                await conn.fetchrow(_HIT, key_id, self._window_s), "an upsert returns its row"
            )
        if row["count"] <= self._limit:
            return None
        # Retry-After is whole seconds, rounded up, never 0.
        return max(1, int(row["remaining_s"]))
