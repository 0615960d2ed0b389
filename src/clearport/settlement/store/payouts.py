"""Payouts and payout files in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import asyncpg

from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.statements import Params
from clearport.settlement.domain import Payout, PayoutFile


def payout_from_row(row: asyncpg.Record) -> Payout:
    return Payout(
        id=row["id"],
        merchant_id=row["merchant_id"],
        settlement_id=row["settlement_id"],
        amount=row["amount"],
        currency=row["currency"],
        status=row["status"],
        arrival_date=row["arrival_date"],
        payout_file_id=row["payout_file_id"],
        flag=row["flag"],
        failure_code=row["failure_code"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_file = Params()
_INSERT_PAYOUT_FILE = f"""
INSERT INTO payout_files (id, business_date, currency, format, object_key, uri, sha256, count,
    total, created_at)
VALUES ({_file("id")}, {_file("business_date")}, {_file("currency")}, {_file("format")},
    {_file("object_key")}, {_file("uri")}, {_file("sha256")}, {_file("count")}, {_file("total")},
    {_file("created_at")})"""

_in_file = Params()
_PAYOUTS_IN_FILE = f"""
UPDATE payouts SET status = 'in_transit', payout_file_id = {_in_file("file_id")}, flag = NULL,
       updated_at = {_in_file("now")}
 WHERE id = ANY({_in_file("ids", "text[]")}) AND status = 'pending'"""

_status = Params()
_SET_PAYOUT_STATUS = f"""
UPDATE payouts SET status = {_status("status")}, failure_code = {_status("failure_code")},
       updated_at = {_status("now")}
 WHERE id = {_status("id")}"""


class PgPayoutStore:
    async def due_payouts(self, tx: Transaction, on: date) -> list[Payout]:
        rows = await conn_of(tx).fetch(
            """SELECT * FROM payouts WHERE status = 'pending' AND arrival_date <= $1
                ORDER BY currency, id FOR UPDATE""",
            on,
        )
        return [payout_from_row(r) for r in rows]

    async def flag_payouts(self, tx: Transaction, ids: Sequence[str], flag: str) -> None:
        await conn_of(tx).execute(
            "UPDATE payouts SET flag = $2 WHERE id = ANY($1::text[]) AND flag IS DISTINCT FROM $2",
            list(ids),
            flag,
        )

    async def has_payout_file(self, tx: Transaction, business_date: date, currency: str) -> bool:
        return bool(
            await conn_of(tx).fetchval(
                "SELECT EXISTS (SELECT 1 FROM payout_files "
                "WHERE business_date = $1 AND currency = $2)",
                business_date,
                currency,
            )
        )

    async def record_payout_file(
        self, tx: Transaction, file: PayoutFile, payout_ids: Sequence[str]
    ) -> None:
        """The file's row, and its payouts in transit."""
        conn = conn_of(tx)
        await conn.execute(
            _INSERT_PAYOUT_FILE,
            *_file.args(
                id=file.id,
                business_date=file.business_date,
                currency=file.currency,
                format=file.format,
                object_key=file.object_key,
                uri=file.uri,
                sha256=file.sha256,
                count=file.count,
                total=file.total_minor,
                created_at=file.created_at,
            ),
        )
        await conn.execute(
            _PAYOUTS_IN_FILE,
            *_in_file.args(file_id=file.id, now=file.created_at, ids=list(payout_ids)),
        )

    async def unstored_payout_files(self, tx: Transaction, on: date) -> list[PayoutFile]:
        rows = await conn_of(tx).fetch(
            "SELECT * FROM payout_files WHERE business_date = $1 AND stored_at IS NULL "
            "ORDER BY currency",
            on,
        )
        return [
            PayoutFile(
                id=r["id"],
                business_date=r["business_date"],
                currency=r["currency"],
                format=r["format"],
                object_key=r["object_key"],
                uri=r["uri"],
                sha256=r["sha256"],
                count=r["count"],
                total_minor=r["total"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    async def payouts_in_file(self, tx: Transaction, file_id: str) -> list[Payout]:
        rows = await conn_of(tx).fetch(
            "SELECT * FROM payouts WHERE payout_file_id = $1 ORDER BY id", file_id
        )
        return [payout_from_row(r) for r in rows]

    async def mark_payout_file_stored(self, tx: Transaction, file_id: str, now: datetime) -> None:
        await conn_of(tx).execute(
            "UPDATE payout_files SET stored_at = $2 WHERE id = $1 AND stored_at IS NULL",
            file_id,
            now,
        )

    async def get_payout(
        self, tx: Transaction, payout_id: str, *, for_update: bool = False
    ) -> Payout | None:
        row = await conn_of(tx).fetchrow(
            "SELECT * FROM payouts WHERE id = $1" + (" FOR UPDATE" if for_update else ""),
            payout_id,
        )
        return None if row is None else payout_from_row(row)

    async def set_payout_status(
        self, tx: Transaction, payout_id: str, status: str, failure_code: str | None, now: datetime
    ) -> None:
        await conn_of(tx).execute(
            _SET_PAYOUT_STATUS,
            *_status.args(id=payout_id, status=status, failure_code=failure_code, now=now),
        )
