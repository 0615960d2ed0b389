"""The overview's figures in one pass over the window's latest payments (GROUPING SETS)."""

from __future__ import annotations

from datetime import datetime, timedelta

from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.payments.stats import BucketStat, GroupStat

# Approved: every status an authorization reaches once approved. Pending ones are undecided.
_RECENT = """
SELECT connector, card_brand, decline_code, currency, amount, status, created_at,
       extract(epoch FROM authorized_at - created_at) * 1000 AS latency_ms,
       status IN ('authorized', 'captured', 'refunded', 'voided', 'expired') AS approved
  FROM payments WHERE created_at >= $1 ORDER BY created_at DESC LIMIT $2
"""

_GROUPS = f"""
WITH recent AS ({_RECENT})
SELECT CASE WHEN GROUPING(connector) = 0 THEN 'connector'
            WHEN GROUPING(card_brand) = 0 THEN 'brand'
            WHEN GROUPING(decline_code) = 0 THEN 'decline_code'
            WHEN GROUPING(currency) = 0 THEN 'currency' ELSE 'all' END AS dimension,
       coalesce(connector, card_brand, decline_code, currency, 'all') AS key,
       count(*) AS total,
       count(*) FILTER (WHERE approved) AS approved,
       count(*) FILTER (WHERE status = 'declined') AS declined,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       CASE WHEN GROUPING(currency) = 0
            THEN coalesce(sum(amount) FILTER (WHERE approved), 0) ELSE 0 END AS approved_amount,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95
  FROM recent
 GROUP BY GROUPING SETS ((connector), (card_brand), (decline_code), (currency), ())
HAVING GROUPING(decline_code) = 1 OR decline_code IS NOT NULL
"""

_BUCKETS = f"""
WITH recent AS ({_RECENT})
SELECT date_bin($3, created_at, $1) AS start, count(*) AS total,
       count(*) FILTER (WHERE approved) AS approved
  FROM recent GROUP BY 1 ORDER BY 1
"""


class PgPaymentStats:
    async def payment_stats(
        self, tx: Transaction, since: datetime, bucket: timedelta, limit: int
    ) -> tuple[list[tuple[str, GroupStat]], list[BucketStat]]:
        conn = conn_of(tx)
        groups = [
            (
                row["dimension"],
                GroupStat(
                    key=row["key"],
                    total=row["total"],
                    approved=row["approved"],
                    declined=row["declined"],
                    failed=row["failed"],
                    approved_amount_minor=int(row["approved_amount"]),
                    latency_p50_ms=row["p50"],
                    latency_p95_ms=row["p95"],
                ),
            )
            for row in await conn.fetch(_GROUPS, since, limit)
        ]
        buckets = [
            BucketStat(row["start"], row["total"], row["approved"])
            for row in await conn.fetch(_BUCKETS, since, limit, bucket)
        ]
        return groups, buckets
