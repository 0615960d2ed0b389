"""Payouts and payout files in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import asyncpg

from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.statements import Params
from clearport.settlement.domain import MerchantCurrency, Payout, PayoutFile

# Advisory lock class of "what a merchant's available balance holds beyond its pending payouts":
# whoever spends it (a dispute, a repayment) holds the pair's lock first.
_FREE_AVAILABLE_LOCK = 0x7C1E_0010

_FREE_AVAILABLE = """
SELECT coalesce((SELECT credits_posted - debits_posted - debits_pending FROM ledger_accounts
                  WHERE owner = $1 AND kind = 'available' AND currency = $2), 0)
     - coalesce((SELECT sum(amount) FROM payouts
                  WHERE merchant_id = $1 AND currency = $2 AND status = 'pending'), 0)"""


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
        repaid_by=row["repaid_by"],
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
    async def lock_free_available(self, tx: Transaction, merchant_id: str, currency: str) -> int:
        """The merchant's available balance beyond what its pending payouts will take (failed
        payouts' money), with the pair locked until the transaction ends. Read in one statement,
        so a payout file written meanwhile (available and its payouts move together) cannot
        make it count twice. Take it before any ledger post of the transaction: ledger posts
        lock accounts, and this lock must come first everywhere."""
        conn = conn_of(tx)
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2 || ':' || $3))",
            _FREE_AVAILABLE_LOCK,
            merchant_id,
            currency,
        )
        return int(await conn.fetchval(_FREE_AVAILABLE, merchant_id, currency))

    async def failed_payouts_to_repay(
        self, tx: Transaction, pairs: Sequence[MerchantCurrency]
    ) -> dict[MerchantCurrency, list[str]]:
        # Locked in (merchant, currency, id) order: the order the pairs were locked one by one.
        rows = await conn_of(tx).fetch(
            """SELECT p.merchant_id, p.currency, p.id FROM payouts p
                 JOIN unnest($1::text[], $2::text[]) AS u(m, c)
                   ON p.merchant_id = u.m AND p.currency = u.c
                WHERE p.status = 'failed' AND p.repaid_by IS NULL
                ORDER BY p.merchant_id, p.currency, p.id FOR UPDATE OF p""",
            [p.merchant_id for p in pairs],
            [p.currency for p in pairs],
        )
        found: dict[MerchantCurrency, list[str]] = {}
        for r in rows:
            found.setdefault(MerchantCurrency(r["merchant_id"], r["currency"]), []).append(r["id"])
        return found

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
        return [payout_file_from_row(r) for r in rows]

    async def get_payout_file(self, tx: Transaction, file_id: str) -> PayoutFile | None:
        row = await conn_of(tx).fetchrow("SELECT * FROM payout_files WHERE id = $1", file_id)
        return None if row is None else payout_file_from_row(row)

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

    async def payout_by_identification(self, tx: Transaction, identification: str) -> Payout | None:
        row = await conn_of(tx).fetchrow(
            "SELECT * FROM payouts WHERE right(id, 15) = $1 FOR UPDATE", identification
        )
        return None if row is None else payout_from_row(row)

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


def payout_file_from_row(r: asyncpg.Record) -> PayoutFile:
    return PayoutFile(
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
