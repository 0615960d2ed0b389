"""The window's history in PostgreSQL: observed approval rates in one GROUPING SETS statement,
the payments streamed through a cursor in the order they were made."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.replay.domain import Observed, PastPayment
from clearport.replay.ports import PastRow
from clearport.rulesets.domain import Facts

CHUNK_ROWS = 2_000

# GROUPING(connector, bin, brand, currency, band) tells the sets apart: 7 (connector, bin),
# 8 (connector, brand, currency, band), 11 (connector, brand), 15 (connector), 31 (all).
_OBSERVED = """
SELECT a.connector, p.card_bin, p.card_brand, p.currency, length(p.amount::text) AS band,
       GROUPING(a.connector, p.card_bin, p.card_brand, p.currency, length(p.amount::text)) AS g,
       count(*) AS tried, count(*) FILTER (WHERE a.status = 'succeeded') AS approved
  FROM payment_attempts a JOIN payments p ON p.id = a.payment_id
 WHERE a.operation = 'authorize' AND a.connector <> '' AND a.status <> 'pending'
   AND p.created_at >= $1 AND p.created_at < $2
 GROUP BY GROUPING SETS ((a.connector, p.card_bin),
                         (a.connector, p.card_brand, p.currency, length(p.amount::text)),
                         (a.connector, p.card_brand), (a.connector), ())"""

_PAYMENTS = """
SELECT p.id, p.merchant_id, m.mcc, m.country, m.pricing, p.amount, p.currency, p.card_brand,
       p.card_bin, p.card_funding, p.card_category, p.card_issuer_country, p.card_fingerprint,
       p.connector, (p.decline_code = 'blocked' AND p.connector = '') AS blocked, p.created_at
  FROM payments p JOIN merchants m ON m.id = p.merchant_id
 WHERE p.created_at >= $1 AND p.created_at < $2
 ORDER BY p.created_at, p.id"""


class PgHistory:
    async def observed(self, tx: Transaction, since: datetime, until: datetime) -> Observed:
        rows = await conn_of(tx).fetch(_OBSERVED, since, until)
        by_bin, by_band, by_brand, by_connector = {}, {}, {}, {}
        overall = (0, 0)
        for r in rows:
            seen = (int(r["approved"]), int(r["tried"]))
            match r["g"]:
                case 7:
                    by_bin[(r["connector"], r["card_bin"])] = seen
                case 8:
                    key = (r["connector"], r["card_brand"], r["currency"], int(r["band"]))
                    by_band[key] = seen
                case 11:
                    by_brand[(r["connector"], r["card_brand"])] = seen
                case 15:
                    by_connector[r["connector"]] = seen
                case _:
                    overall = seen
        return Observed(by_bin, by_band, by_brand, by_connector, overall)

    async def payments(
        self, tx: Transaction, since: datetime, until: datetime
    ) -> AsyncIterator[PastRow]:
        async for r in conn_of(tx).cursor(_PAYMENTS, since, until, prefetch=CHUNK_ROWS):
            facts = Facts(
                payment_id=r["id"],
                merchant=r["merchant_id"],
                mcc=r["mcc"],
                amount=r["amount"],
                currency=r["currency"],
                brand=r["card_brand"],
                bin=r["card_bin"],
                funding=r["card_funding"],
                issuer_country=r["card_issuer_country"],
                fingerprint=r["card_fingerprint"],
                category=r["card_category"],
            )
            past = PastPayment(facts, r["created_at"], r["connector"], bool(r["blocked"]))
            yield PastRow(past, r["country"], dict(r["pricing"]))
