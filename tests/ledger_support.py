"""Shared helpers for the ledger tests: a service on a fresh pool, and the zero-sum check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg

from clearport.core.clock import SystemClock
from clearport.db.database import Database
from clearport.ledger.service import LedgerService
from clearport.ledger.store import PgLedgerStore

T = TypeVar("T")


async def with_ledger(
    database_url: str, fn: Callable[[Database, LedgerService], Awaitable[T]], *, pool: int = 4
) -> T:
    db = Database(database_url, min_size=1, max_size=pool)
    await db.open()
    try:
        return await fn(db, LedgerService(db, PgLedgerStore(), SystemClock()))
    finally:
        await db.close()


def assert_zero_sum(database_url: str) -> None:
    """Σ debits = Σ credits per currency over all transfers and over all account totals."""
    with psycopg.connect(database_url) as conn:
        bad = conn.execute(
            """
            SELECT s.currency, sum(s.delta) FROM (
                SELECT d.currency, t.amount AS delta FROM ledger_transfers t
                  JOIN ledger_accounts d ON d.id = t.debit_account_id
                 WHERE t.action IN ('post', 'post_pending')
                UNION ALL
                SELECT c.currency, -t.amount FROM ledger_transfers t
                  JOIN ledger_accounts c ON c.id = t.credit_account_id
                 WHERE t.action IN ('post', 'post_pending')
            ) s GROUP BY s.currency HAVING sum(s.delta) <> 0
            """
        ).fetchall()
        assert bad == []
        totals = conn.execute(
            "SELECT currency, sum(debits_posted) - sum(credits_posted), "
            "sum(debits_pending) - sum(credits_pending) FROM ledger_accounts "
            "GROUP BY currency HAVING sum(debits_posted) <> sum(credits_posted) "
            "OR sum(debits_pending) <> sum(credits_pending)"
        ).fetchall()
        assert totals == []
        # Account totals equal the sum of their transfers.
        drift = conn.execute(
            """
            WITH eff AS (
                SELECT t.debit_account_id AS acc,
                       CASE WHEN t.action IN ('post', 'post_pending') THEN t.amount ELSE 0 END
                           AS dp, 0 AS cp
                  FROM ledger_transfers t
                UNION ALL
                SELECT t.credit_account_id,
                       0, CASE WHEN t.action IN ('post', 'post_pending') THEN t.amount ELSE 0 END
                  FROM ledger_transfers t
            )
            SELECT a.id FROM ledger_accounts a
              LEFT JOIN (SELECT acc, sum(dp) AS dp, sum(cp) AS cp FROM eff GROUP BY acc) e
                ON e.acc = a.id
             WHERE a.debits_posted <> coalesce(e.dp, 0) OR a.credits_posted <> coalesce(e.cp, 0)
            """
        ).fetchall()
        assert drift == []
