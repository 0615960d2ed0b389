"""The ledger in PostgreSQL: `ledger_post` (see migrations 0003 and 0020) posts a linked group
in one round trip; balances come from the account rows, balance-as-of from per-journal
checkpoints. A platform account may be several rows (shards, decision 0913): every read here
sums an account's rows in one snapshot, which is exact because each transaction moves each
row's totals together with its transfers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from clearport.core.errors import invariant
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import add_filters, fetch_page
from clearport.ledger.domain import (
    Account,
    AccountKind,
    AccountRef,
    BalanceTransaction,
    PostResult,
    TransferAction,
    TransferRequest,
    merchant_view,
    raise_for,
)

T = TypeVar("T")

_POST_SQL = (
    "SELECT status, txn_id, err_code, err_index FROM ledger_post("
    "$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], "
    "$8::int[], $9::bigint[], $10::int[], $11::bigint[], $12::text[], $13::text[], $14::text[], "
    "$15::text[], $16::timestamptz[], $17::timestamptz)"
)

# One logical account: its shards' totals summed (one row for a merchant's account; at most
# `clearport.ledger_shards` rows for a platform one). Its id is its first shard's.
_ACCOUNT_TOTALS = (
    "SELECT min(id) AS id, owner, kind, currency, sum(debits_posted)::bigint AS debits_posted, "
    "sum(credits_posted)::bigint AS credits_posted, "
    "sum(debits_pending)::bigint AS debits_pending, "
    "sum(credits_pending)::bigint AS credits_pending FROM ledger_accounts "
)


def _account(row: asyncpg.Record) -> Account:
    return Account(
        id=row["id"],
        owner=row["owner"],
        kind=AccountKind(row["kind"]),
        currency=row["currency"],
        debits_posted=row["debits_posted"],
        credits_posted=row["credits_posted"],
        debits_pending=row["debits_pending"],
        credits_pending=row["credits_pending"],
    )


def _or_null(values: list[T]) -> list[T] | None:
    """An all-NULL column is sent as one NULL: `unnest(a, b, ...)` pads it back to length."""
    return None if all(v is None for v in values) else values


def _compact(values: list[T]) -> list[T] | None:
    """All NULL: one NULL; all equal: a one-element array (`ledger_expand` widens it)."""
    first = values[0]
    for v in values:
        if v != first:
            return values
    return None if first is None else [first]


class PgLedgerStore:
    async def post(
        self,
        tx: Transaction,
        transfers: Sequence[TransferRequest],
        txn_ids: Sequence[str],
        *,
        now: datetime | None = None,
    ) -> list[PostResult]:
        return await self._post(tx, transfers, [t.action for t in transfers], txn_ids, now=now)

    async def _post(
        self,
        tx: Transaction,
        transfers: Sequence[TransferRequest],
        actions: Sequence[TransferAction],
        txn_ids: Sequence[str],
        *,
        now: datetime | None,
    ) -> list[PostResult]:
        invariant(len(txn_ids) == len(transfers), "one txn id per transfer")
        refs: dict[AccountRef, int] = {}
        debit_ids: list[int | None] = []
        debit_refs: list[int | None] = []
        credit_ids: list[int | None] = []
        credit_refs: list[int | None] = []
        for t in transfers:
            if isinstance(t.debit, AccountRef):
                debit_ids.append(None)
                debit_refs.append(refs.setdefault(t.debit, len(refs) + 1))
            else:
                debit_ids.append(t.debit)
                debit_refs.append(None)
            if isinstance(t.credit, AccountRef):
                credit_ids.append(None)
                credit_refs.append(refs.setdefault(t.credit, len(refs) + 1))
            else:
                credit_ids.append(t.credit)
                credit_refs.append(None)
        rows = await conn_of(tx).fetch(
            _POST_SQL,
            [r.owner for r in refs],
            [str(r.kind) for r in refs],
            [r.currency for r in refs],
            [t.id for t in transfers],
            list(txn_ids),
            _compact([str(a) for a in actions]),
            _compact(debit_ids),
            _compact(debit_refs),
            _compact(credit_ids),
            _compact(credit_refs),
            [t.amount_minor for t in transfers],
            _compact([t.currency for t in transfers]),
            _compact([t.code for t in transfers]),
            _or_null([t.source for t in transfers]),
            _or_null([t.pending_id for t in transfers]),
            _or_null([t.expires_at for t in transfers]),
            now,
        )
        if rows and rows[0]["status"] == "error":
            raise_for(rows[0]["err_code"], rows[0]["err_index"])
        if rows and rows[0]["status"] == "all_created":
            return [
                PostResult(id=t.id, status="created", txn_id=txn)
                for t, txn in zip(transfers, txn_ids, strict=True)
            ]
        invariant(len(rows) == len(transfers), "ledger_post answers every transfer")
        return [
            PostResult(id=t.id, status=row["status"], txn_id=row["txn_id"])
            for t, row in zip(transfers, rows, strict=True)
        ]

    async def expire(
        self, tx: Transaction, now: datetime, txn_ids: Sequence[str]
    ) -> list[PostResult]:
        rows = await conn_of(tx).fetch(
            """
            SELECT p.id, p.txn_id, p.debit_account_id, p.credit_account_id, p.amount,
                   p.currency, p.code, p.source
              FROM ledger_transfers p
             WHERE p.action = 'pending' AND p.expires_at IS NOT NULL AND p.expires_at <= $1
               AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id)
             ORDER BY p.expires_at, p.id
             LIMIT $2
            """,
            now,
            len(txn_ids),
        )
        if not rows:
            return []
        transfers = [
            TransferRequest(
                id=f"expire:{r['txn_id']}",
                debit=r["debit_account_id"],
                credit=r["credit_account_id"],
                amount_minor=r["amount"],
                currency=r["currency"],
                code=r["code"],
                source=r["source"],
                pending_id=r["id"],
            )
            for r in rows
        ]
        return await self._post(
            tx,
            transfers,
            [TransferAction.EXPIRE_PENDING] * len(transfers),
            txn_ids[: len(transfers)],
            now=now,
        )

    async def accounts(self, tx: Transaction, owner: str) -> list[Account]:
        rows = await conn_of(tx).fetch(
            f"{_ACCOUNT_TOTALS} WHERE owner = $1 GROUP BY owner, kind, currency ORDER BY 1",
            owner,
        )
        return [_account(r) for r in rows]

    async def account(self, tx: Transaction, ref: AccountRef) -> Account | None:
        row = await conn_of(tx).fetchrow(
            f"{_ACCOUNT_TOTALS} WHERE owner = $1 AND kind = $2 AND currency = $3 "
            "GROUP BY owner, kind, currency",
            ref.owner,
            str(ref.kind),
            ref.currency,
        )
        return _account(row) if row else None

    async def account_as_of(self, tx: Transaction, ref: AccountRef, at: datetime) -> Account | None:
        # Per shard, its last checkpoint at or before `at` (one index probe each): a shard's
        # checkpoints are written under its row lock, so each is the row's totals after every
        # journal it applied up to then.
        row = await conn_of(tx).fetchrow(
            """
            SELECT min(a.id) AS id, a.owner, a.kind, a.currency,
                   coalesce(sum(b.debits_posted), 0)::bigint AS debits_posted,
                   coalesce(sum(b.credits_posted), 0)::bigint AS credits_posted,
                   coalesce(sum(b.debits_pending), 0)::bigint AS debits_pending,
                   coalesce(sum(b.credits_pending), 0)::bigint AS credits_pending
              FROM ledger_accounts a
              LEFT JOIN LATERAL (
                  SELECT * FROM ledger_balances b
                   WHERE b.account_id = a.id AND b.at <= $4
                   ORDER BY b.at DESC LIMIT 1) b ON true
             WHERE a.owner = $1 AND a.kind = $2 AND a.currency = $3
             GROUP BY a.owner, a.kind, a.currency
            """,
            ref.owner,
            str(ref.kind),
            ref.currency,
            at,
        )
        return _account(row) if row else None

    async def merchant_exists(self, tx: Transaction, merchant_id: str) -> bool:
        return bool(
            await conn_of(tx).fetchval(
                "SELECT EXISTS (SELECT 1 FROM merchants WHERE id = $1)", merchant_id
            )
        )

    async def balance_transactions(
        self, tx: Transaction, merchant_id: str, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[BalanceTransaction]:
        # The merchant's transfers: those debiting or crediting one of its accounts, posted
        # (holds and their resolutions other than a post are not balance transactions).
        args: list[Any] = [merchant_id, sorted(filters["types"])]
        where = ["t.code = ANY($2::text[])"]
        add_filters(
            where,
            args,
            filters,
            equal={"type": "t.code", "source": "t.source"},
            created_column="t.created_at",
        )
        select = f"""
            SELECT * FROM (
                SELECT t.txn_id AS id, t.code, t.amount, t.currency, t.source, t.created_at,
                       d.owner AS d_owner, d.kind AS d_kind, c.owner AS c_owner,
                       c.kind AS c_kind, coalesce(m.payout_delay_days, 0) AS delay_days
                  FROM ledger_transfers t
                  JOIN ledger_accounts d ON d.id = t.debit_account_id
                  JOIN ledger_accounts c ON c.id = t.credit_account_id
                  LEFT JOIN merchants m ON m.id = $1
                 WHERE t.merchant_id = $1 AND t.action IN ('post', 'post_pending')
                   AND {" AND ".join(where)}
            ) t"""

        def row_to(row: asyncpg.Record) -> BalanceTransaction:
            amount, status = merchant_view(
                row["code"],
                row["amount"],
                row["d_owner"],
                AccountKind(row["d_kind"]),
                row["c_owner"],
                AccountKind(row["c_kind"]),
                merchant_id,
            )
            created: datetime = row["created_at"]
            delay = timedelta(days=row["delay_days"]) if status == "pending" else timedelta(0)
            return BalanceTransaction(
                id=row["id"],
                type=row["code"],
                amount_minor=amount,
                currency=row["currency"],
                source=row["source"],
                status=status,
                available_on=created + delay,
                created_at=created,
            )

        return await fetch_page(
            conn_of(tx), select=select, where=[], args=args, page=page, row_to=row_to
        )
