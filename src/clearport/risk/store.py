"""Velocity counts from the payments table: one read, inside the authorization's first
transaction, that writes nothing (decision 0520)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.risk.domain import Velocity, VelocityCount
from clearport.rulesets.domain import Facts

# Each rule's window counted through an index: (merchant_id, card_fingerprint, created_at) for a
# card, (merchant_id, created_at) for a merchant. A payment blocked by risk is not counted: a
# blocked card's retries must not keep it over the limit for ever.
_COUNTS = """
SELECT r.i, coalesce(c.n, 0) AS n, coalesce(c.total, 0) AS total
  FROM unnest($1::text[], $2::integer[], $3::text[])
       WITH ORDINALITY AS r(per, window_s, currency, i)
  LEFT JOIN LATERAL (
      SELECT count(*) AS n, coalesce(sum(p.amount) FILTER (WHERE p.currency = r.currency), 0)
             AS total
        FROM payments p
       WHERE r.per = 'card_fingerprint' AND p.merchant_id = $4 AND p.card_fingerprint = $5
         AND p.created_at > $6::timestamptz - make_interval(secs => r.window_s)
         AND p.created_at <= $6::timestamptz
         AND p.decline_code IS DISTINCT FROM 'blocked'
      UNION ALL
      SELECT count(*), coalesce(sum(p.amount) FILTER (WHERE p.currency = r.currency), 0)
        FROM payments p
       WHERE r.per = 'merchant' AND p.merchant_id = $4
         AND p.created_at > $6::timestamptz - make_interval(secs => r.window_s)
         AND p.created_at <= $6::timestamptz
         AND p.decline_code IS DISTINCT FROM 'blocked'
  ) c ON c.n > 0
 ORDER BY r.i"""


class PgVelocityCounter:
    async def counts(
        self, tx: Transaction, facts: Facts, rules: Sequence[Velocity], now: datetime
    ) -> list[VelocityCount]:
        if not rules:
            return []
        rows = await conn_of(tx).fetch(
            _COUNTS,
            [r.per for r in rules],
            [r.window_s for r in rules],
            [r.currency for r in rules],
            facts.merchant,
            facts.fingerprint,
            now,
        )
        return [VelocityCount(int(r["n"]), int(r["total"])) for r in rows]
