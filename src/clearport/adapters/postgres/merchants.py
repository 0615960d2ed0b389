"""Merchants and API keys in PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from clearport.adapters.postgres.database import conn_of
from clearport.adapters.postgres.pagination import fetch_page
from clearport.app.ports import Transaction
from clearport.domain.merchants import ApiKey, Merchant, MerchantStatus
from clearport.domain.pagination import Page, PageRequest

_MERCHANT_COLUMNS = (
    "id, name, country, mcc, default_currency, status, pricing, payout_delay_days, reserve, "
    "metadata, created_at"
)


def _merchant(row: asyncpg.Record) -> Merchant:
    return Merchant(
        id=row["id"],
        name=row["name"],
        country=row["country"],
        mcc=row["mcc"],
        default_currency=row["default_currency"],
        status=MerchantStatus(row["status"]),
        pricing=row["pricing"],
        payout_delay_days=row["payout_delay_days"],
        reserve=row["reserve"],
        metadata=row["metadata"],
        created_at=row["created_at"],
    )


class PgMerchantRepository:
    async def insert(self, tx: Transaction, merchant: Merchant) -> None:
        await conn_of(tx).execute(
            f"INSERT INTO merchants ({_MERCHANT_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            merchant.id,
            merchant.name,
            merchant.country,
            merchant.mcc,
            merchant.default_currency,
            str(merchant.status),
            merchant.pricing,
            merchant.payout_delay_days,
            merchant.reserve,
            merchant.metadata,
            merchant.created_at,
        )

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
