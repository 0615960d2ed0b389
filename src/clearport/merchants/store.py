"""Merchants and their payment settings in PostgreSQL."""

from __future__ import annotations

import asyncpg

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import fetch_page
from clearport.db.statements import Params, Table
from clearport.merchants.domain import Merchant, MerchantGate, MerchantStatus

MERCHANTS = Table(
    "merchants",
    (
        ("id", "text"),
        ("name", "text"),
        ("country", "text"),
        ("mcc", "text"),
        ("default_currency", "text"),
        ("status", "text"),
        ("pricing", "jsonb"),
        ("payout_delay_days", "integer"),
        ("reserve", "jsonb"),
        ("metadata", "jsonb"),
        ("created_at", "timestamptz"),
    ),
)
MERCHANTS.check_matches(Merchant)
_MERCHANT_COLUMNS = MERCHANTS.column_list()
_INSERT_PARAMS = Params()
_INSERT = (
    f"INSERT INTO {MERCHANTS.name} ({_MERCHANT_COLUMNS}) "
    f"VALUES ({MERCHANTS.values(_INSERT_PARAMS, 'merchant')})"
)


def _merchant(row: asyncpg.Record) -> Merchant:
    return MERCHANTS.record(Merchant, row, status=MerchantStatus)


class PgMerchantRepository:
    async def insert(self, tx: Transaction, merchant: Merchant) -> None:
        values = MERCHANTS.named("merchant", MERCHANTS.row(merchant))
        await conn_of(tx).execute(_INSERT, *_INSERT_PARAMS.args(values))

    async def get(
        self, tx: Transaction, merchant_id: str, *, for_update: bool = False
    ) -> Merchant | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await conn_of(tx).fetchrow(
            f"SELECT {_MERCHANT_COLUMNS} FROM merchants WHERE id = $1{lock}", merchant_id
        )
        return None if row is None else _merchant(row)

    async def list(self, tx: Transaction, page: PageRequest) -> Page[Merchant]:
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {_MERCHANT_COLUMNS} FROM merchants",
            where=[],
            args=[],
            page=page,
            row_to=_merchant,
        )

    async def update(self, tx: Transaction, merchant: Merchant) -> None:
        await conn_of(tx).execute(
            "UPDATE merchants SET name = $2, status = $3, pricing = $4, payout_delay_days = $5, "
            "reserve = $6, metadata = $7, updated_at = now() WHERE id = $1",
            merchant.id,
            merchant.name,
            str(merchant.status),
            merchant.pricing,
            merchant.payout_delay_days,
            merchant.reserve,
            merchant.metadata,
        )


class PgPaymentSettingsRepository:
    async def merchant_gate(self, tx: Transaction, merchant_id: str) -> MerchantGate | None:
        row = await conn_of(tx).fetchrow(
            "SELECT m.status, m.mcc, coalesce(s.require_cvc, false) AS require_cvc "
            "FROM merchants m "
            "LEFT JOIN merchant_payment_settings s ON s.merchant_id = m.id WHERE m.id = $1",
            merchant_id,
        )
        if row is None:
            return None
        return MerchantGate(MerchantStatus(row["status"]), bool(row["require_cvc"]), row["mcc"])

    async def require_cvc(self, tx: Transaction, merchant_id: str) -> bool:
        value = await conn_of(tx).fetchval(
            "SELECT require_cvc FROM merchant_payment_settings WHERE merchant_id = $1", merchant_id
        )
        return bool(value)

    async def set_require_cvc(self, tx: Transaction, merchant_id: str, value: bool) -> None:
        await conn_of(tx).execute(
            "INSERT INTO merchant_payment_settings (merchant_id, require_cvc) VALUES ($1, $2) "
            "ON CONFLICT (merchant_id) DO UPDATE SET require_cvc = $2, updated_at = now()",
            merchant_id,
            value,
        )
