"""Adjustments in PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from clearport.adjustments.domain import Adjustment
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import add_filters, fetch_page
from clearport.db.statements import Params, Table

ADJUSTMENTS = Table(
    "adjustments",
    (
        ("id", "text"),
        ("merchant_id", "text"),
        ("amount", "bigint"),
        ("currency", "text"),
        ("reason", "text"),
        ("balance_transaction", "text"),
        ("created_by", "text"),
        ("created_at", "timestamptz"),
    ),
)
ADJUSTMENTS.check_matches(Adjustment)
_SELECT = f"SELECT {ADJUSTMENTS.column_list()} FROM adjustments"
_insert = Params()
_INSERT = (
    f"INSERT INTO adjustments ({ADJUSTMENTS.column_list()}) "
    f"VALUES ({ADJUSTMENTS.values(_insert, 'a')})"
)


def _adjustment(row: asyncpg.Record) -> Adjustment:
    return ADJUSTMENTS.record(Adjustment, row)


class PgAdjustmentStore:
    async def insert(self, tx: Transaction, adjustment: Adjustment) -> None:
        values = ADJUSTMENTS.named("a", ADJUSTMENTS.row(adjustment))
        await conn_of(tx).execute(_INSERT, *_insert.args(values))

    async def get(
        self, tx: Transaction, adjustment_id: str, *, merchant_id: str | None = None
    ) -> Adjustment | None:
        row = await conn_of(tx).fetchrow(
            f"{_SELECT} WHERE id = $1 AND ($2::text IS NULL OR merchant_id = $2)",
            adjustment_id,
            merchant_id,
        )
        return None if row is None else _adjustment(row)

    async def list(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Adjustment]:
        where, args = (["merchant_id = $1"], [merchant_id]) if merchant_id else ([], [])
        add_filters(where, args, filters, equal={})
        return await fetch_page(
            conn_of(tx), select=_SELECT, where=where, args=args, page=page, row_to=_adjustment
        )
