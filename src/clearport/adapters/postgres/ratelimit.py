"""A fixed-window request counter per key, shared by every API process through PostgreSQL."""

from __future__ import annotations

from clearport.adapters.postgres.database import Database

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
            row = await conn.fetchrow(_HIT, key_id, self._window_s)
        assert row is not None
        if row["count"] <= self._limit:
            return None
        # Retry-After is whole seconds, rounded up, never 0.
        return max(1, int(row["remaining_s"]))
