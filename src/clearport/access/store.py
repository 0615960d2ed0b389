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

_KEY_COLUMNS = "id, kind, merchant_id, role, mode, display, created_at, expires_at, revoked_at"


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        kind=row["kind"],
        merchant_id=row["merchant_id"],
        role=row["role"],
        mode=row["mode"],
        display=row["display"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


class PgApiKeyRepository:
    async def insert(
        self, tx: Transaction, key: ApiKey, secret_hash: bytes, created_by: str
    ) -> None:
        await conn_of(tx).execute(
            f"INSERT INTO api_keys ({_KEY_COLUMNS}, secret_hash, created_by) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            key.id,
            key.kind,
            key.merchant_id,
            key.role,
            key.mode,
            key.display,
            key.created_at,
            key.expires_at,
            key.revoked_at,
            secret_hash,
            created_by,
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
