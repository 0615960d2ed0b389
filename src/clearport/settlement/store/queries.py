"""Settlements, their items and payouts read from PostgreSQL, a page at a time."""

from __future__ import annotations

import json

import asyncpg

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import fetch_page
from clearport.settlement.domain import ItemLine, Payout, Settlement
from clearport.settlement.store.payouts import payout_from_row

_SETTLEMENT_SELECT = (
    "SELECT s.*, p.id AS payout_id FROM settlements s LEFT JOIN payouts p ON p.settlement_id = s.id"
)

_ITEM_SELECT = """SELECT settlement_id, merchant_id, payment_id, source_id, reference, type,
                  brand, currency, gross, interchange, scheme_fee, markup, commission, net,
                  flags FROM settlement_items"""


def _settlement(row: asyncpg.Record) -> Settlement:
    report = row["report"]
    return Settlement(
        id=row["id"],
        run_id=row["run_id"],
        business_date=row["business_date"],
        merchant_id=row["merchant_id"],
        currency=row["currency"],
        count=row["count"],
        gross=row["gross"],
        refunds=row["refunds"],
        fees=row["fees"],
        interchange=row["interchange"],
        scheme_fees=row["scheme_fees"],
        markup=row["markup"],
        rounding=row["rounding"],
        reserve_held=row["reserve_held"],
        reserve_released=row["reserve_released"],
        net=row["net"],
        carried_in=row["carried_in"],
        carried_out=row["carried_out"],
        payout=row["payout"],
        payout_id=row["payout_id"],
        flagged_items=row["flagged_items"],
        report=json.loads(report) if isinstance(report, str) else report,
        created_at=row["created_at"],
    )


class PgQueryStore:
    async def get_settlement(self, tx: Transaction, settlement_id: str) -> Settlement | None:
        row = await conn_of(tx).fetchrow(f"{_SETTLEMENT_SELECT} WHERE s.id = $1", settlement_id)
        return None if row is None else _settlement(row)

    async def list_settlements(
        self, tx: Transaction, page: PageRequest, merchant_id: str | None, run_id: str | None
    ) -> Page[Settlement]:
        where, args = [], []
        if merchant_id is not None:
            args.append(merchant_id)
            where.append(f"s.merchant_id = ${len(args)}")
        if run_id is not None:
            args.append(run_id)
            where.append(f"s.run_id = ${len(args)}")
        return await fetch_page(
            conn_of(tx),
            select=_SETTLEMENT_SELECT,
            where=where,
            args=args,
            page=page,
            row_to=_settlement,
            id_column="s.id",
        )

    async def list_items(
        self, tx: Transaction, settlement_id: str, page: PageRequest
    ) -> Page[ItemLine]:
        return await fetch_page(
            conn_of(tx),
            select=_ITEM_SELECT,
            where=["settlement_id = $1"],
            args=[settlement_id],
            page=page,
            row_to=lambda r: ItemLine(*r),
            id_column="source_id",
        )

    async def list_payouts(
        self, tx: Transaction, page: PageRequest, merchant_id: str | None, status: str | None
    ) -> Page[Payout]:
        where, args = [], []
        if merchant_id is not None:
            args.append(merchant_id)
            where.append(f"merchant_id = ${len(args)}")
        if status is not None:
            args.append(status)
            where.append(f"status = ${len(args)}")
        return await fetch_page(
            conn_of(tx),
            select="SELECT * FROM payouts",
            where=where,
            args=args,
            page=page,
            row_to=payout_from_row,
        )
