"""Payments, refunds, attempts, the transaction log and the outbox in PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import Database, conn_of
from clearport.db.pagination import add_filters, fetch_page
from clearport.events.domain import Event
from clearport.payments.domain import (
    Attempt,
    AttemptStatus,
    Operation,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from clearport.txlog.domain import TxlogEntry

_PAYMENT_COLUMNS = (
    "id, merchant_id, amount, currency, status, capture_requested, amount_captured, "
    "amount_refunded, amount_refund_pending, pending_operation, card_brand, card_bin, card_last4, "
    "card_exp_month, card_exp_year, card_fingerprint, token_id, auth_attempt_id, auth_code, "
    "network_reference, decline_code, connector, routing, reference, metadata, created_at, "
    "updated_at, authorized_at, captured_at"
)
_REFUND_COLUMNS = (
    "id, payment_id, merchant_id, amount, currency, status, reason, attempt_id, created_at, "
    "updated_at"
)
_ATTEMPT_COLUMNS = (
    "id, payment_id, merchant_id, operation, refund_id, amount, currency, connector, status, "
    "response_code, decline_code, auth_code, network_reference, created_at, completed_at"
)
_EVENT_COLUMNS = "id, merchant_id, type, object_id, data, created_at"


def _payment(row: asyncpg.Record) -> Payment:
    values = dict(row)
    values["status"] = PaymentStatus(values["status"])
    return Payment(**values)


def _refund(row: asyncpg.Record) -> Refund:
    values = dict(row)
    values["status"] = RefundStatus(values["status"])
    return Refund(**values)


def _attempt(row: asyncpg.Record) -> Attempt:
    values = dict(row)
    values["status"] = AttemptStatus(values["status"])
    values["operation"] = Operation(values["operation"])
    return Attempt(**values)


def _event(row: asyncpg.Record) -> Event:
    return Event(**dict(row))


def _payment_args(p: Payment) -> tuple[Any, ...]:
    return (
        p.id,
        p.merchant_id,
        p.amount,
        p.currency,
        str(p.status),
        p.capture_requested,
        p.amount_captured,
        p.amount_refunded,
        p.amount_refund_pending,
        p.pending_operation,
        p.card_brand,
        p.card_bin,
        p.card_last4,
        p.card_exp_month,
        p.card_exp_year,
        p.card_fingerprint,
        p.token_id,
        p.auth_attempt_id,
        p.auth_code,
        p.network_reference,
        p.decline_code,
        p.connector,
        p.routing,
        p.reference,
        p.metadata,
        p.created_at,
        p.updated_at,
        p.authorized_at,
        p.captured_at,
    )


def _filters(
    merchant_id: str | None, filters: Mapping[str, Any], columns: Sequence[str]
) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if merchant_id is not None:
        args.append(merchant_id)
        where.append(f"merchant_id = ${len(args)}")
    add_filters(where, args, filters, equal={column: column for column in columns})
    return where, args


_TXLOG_COLUMNS = (
    "object_type, object_id, payment_id, merchant_id, from_status, to_status, amount, currency, "
    "actor, connector_result, occurred_at"
)
_TXLOG_TYPES = (
    "text", "text", "text", "text", "text", "text", "bigint", "text", "text", "jsonb",
    "timestamptz",
)  # fmt: skip
_EVENT_TYPES = ("text", "text", "text", "text", "jsonb", "timestamptz")
_PAYMENT_TYPES = (
    "text", "text", "bigint", "text", "text", "boolean", "bigint", "bigint", "bigint", "text",
    "text", "text", "text", "integer", "integer", "text", "text", "text", "text", "text", "text",
    "text", "jsonb", "text", "jsonb", "timestamptz", "timestamptz", "timestamptz", "timestamptz",
)  # fmt: skip
_ATTEMPT_TYPES = (
    "text", "text", "text", "text", "text", "bigint", "text", "text", "text", "text", "text",
    "text", "text", "timestamptz", "timestamptz",
)  # fmt: skip


def _params(types: Sequence[str], start: int) -> str:
    return ", ".join(f"${start + i}::{t}" for i, t in enumerate(types))


def _txlog_args(e: TxlogEntry) -> tuple[Any, ...]:
    return (
        e.object_type,
        e.object_id,
        e.payment_id,
        e.merchant_id,
        e.from_status,
        e.to_status,
        e.amount,
        e.currency,
        e.actor,
        e.connector_result,
        e.occurred_at,
    )


def _attempt_args(a: Attempt) -> tuple[Any, ...]:
    return (
        a.id,
        a.payment_id,
        a.merchant_id,
        str(a.operation),
        a.refund_id,
        a.amount,
        a.currency,
        a.connector,
        str(a.status),
        a.response_code,
        a.decline_code,
        a.auth_code,
        a.network_reference,
        a.created_at,
        a.completed_at,
    )


def _finish_args(
    attempt: Attempt, payment: Payment, entry: TxlogEntry, event: Event
) -> tuple[Any, ...]:
    return (
        attempt.id,
        str(attempt.status),
        attempt.response_code,
        attempt.decline_code,
        attempt.auth_code,
        attempt.network_reference,
        attempt.completed_at,
        payment.id,
        str(payment.status),
        payment.amount_captured,
        payment.auth_code,
        payment.network_reference,
        payment.decline_code,
        payment.updated_at,
        payment.authorized_at,
        payment.captured_at,
        *_txlog_args(entry),
        event.id,
        event.merchant_id,
        event.type,
        event.object_id,
        event.data,
        event.created_at,
    )


# One round trip each for the two writes of every authorization (see decision 0300).
_INSERT_PENDING = (
    f"WITH p AS (INSERT INTO payments ({_PAYMENT_COLUMNS}) VALUES ({_params(_PAYMENT_TYPES, 1)}) "
    "RETURNING id), "
    f"a AS (INSERT INTO payment_attempts ({_ATTEMPT_COLUMNS}) "
    f"SELECT {_params(_ATTEMPT_TYPES, 30)} FROM p RETURNING id) "
    f"INSERT INTO txlog ({_TXLOG_COLUMNS}) SELECT {_params(_TXLOG_TYPES, 45)} FROM a"
)
_FINISH_AUTHORIZATION = (
    "WITH a AS (UPDATE payment_attempts SET status = $2, response_code = $3, decline_code = $4, "
    "auth_code = $5, network_reference = $6, completed_at = $7 "
    "WHERE id = $1 AND status = 'pending' RETURNING payment_id), "
    "p AS (UPDATE payments SET status = $9, amount_captured = $10, auth_code = $11, "
    "network_reference = $12, decline_code = $13, updated_at = $14, authorized_at = $15, "
    "captured_at = $16 WHERE id = $8 AND status = 'pending' AND id IN (SELECT payment_id FROM a) "
    "RETURNING id), "
    f"t AS (INSERT INTO txlog ({_TXLOG_COLUMNS}) SELECT {_params(_TXLOG_TYPES, 17)} FROM p) "
    f"INSERT INTO events ({_EVENT_COLUMNS}) SELECT {_params(_EVENT_TYPES, 28)} FROM p "
    "RETURNING true"
)
# The same as one autocommit statement that also stores the idempotent response: a single
# statement is a transaction of its own, so BEGIN, COMMIT and a separate UPDATE are saved.
_FINISH_AUTHORIZATION_ALONE = _FINISH_AUTHORIZATION.replace(
    f"FROM p) INSERT INTO events ({_EVENT_COLUMNS})",
    "FROM p), i AS (UPDATE idempotency_keys SET state = 'completed', "
    "response_status = $34::integer, response_body = $35::bytea, completed_at = now() "
    "WHERE principal_id = $36::text AND key = $37::text AND EXISTS (SELECT 1 FROM p)) "
    f"INSERT INTO events ({_EVENT_COLUMNS})",
)
if _FINISH_AUTHORIZATION_ALONE == _FINISH_AUTHORIZATION:  # pragma: no cover - a broken edit
    raise RuntimeError("the idempotency step was not spliced into the statement")


class PgPaymentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def finish_authorization_alone(
        self,
        attempt: Attempt,
        payment: Payment,
        entry: TxlogEntry,
        event: Event,
        response: tuple[str, str, int, bytes] | None,
    ) -> bool:
        scope, key, status, body = response if response is not None else (None, None, None, None)
        async with self._db.pool.acquire() as conn:
            done = await conn.fetchval(
                _FINISH_AUTHORIZATION_ALONE,
                *_finish_args(attempt, payment, entry, event),
                status,
                body,
                scope,
                key,
            )
        return bool(done)

    async def merchant_gate(self, tx: Transaction, merchant_id: str) -> tuple[str, bool] | None:
        row = await conn_of(tx).fetchrow(
            "SELECT m.status, coalesce(s.require_cvc, false) AS require_cvc FROM merchants m "
            "LEFT JOIN merchant_payment_settings s ON s.merchant_id = m.id WHERE m.id = $1",
            merchant_id,
        )
        return None if row is None else (str(row["status"]), bool(row["require_cvc"]))

    async def insert_pending(
        self, tx: Transaction, payment: Payment, attempt: Attempt, entry: TxlogEntry
    ) -> None:
        await conn_of(tx).execute(
            _INSERT_PENDING, *_payment_args(payment), *_attempt_args(attempt), *_txlog_args(entry)
        )

    async def finish_authorization(
        self,
        tx: Transaction,
        attempt: Attempt,
        payment: Payment,
        entry: TxlogEntry,
        event: Event,
    ) -> bool:
        done = await conn_of(tx).fetchval(
            _FINISH_AUTHORIZATION, *_finish_args(attempt, payment, entry, event)
        )
        return bool(done)

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

    async def insert_payment(self, tx: Transaction, payment: Payment) -> None:
        placeholders = ", ".join(f"${i}" for i in range(1, 30))
        await conn_of(tx).execute(
            f"INSERT INTO payments ({_PAYMENT_COLUMNS}) VALUES ({placeholders})",
            *_payment_args(payment),
        )

    async def update_payment(self, tx: Transaction, payment: Payment) -> None:
        await conn_of(tx).execute(
            "UPDATE payments SET status = $2, amount_captured = $3, amount_refunded = $4, "
            "amount_refund_pending = $5, pending_operation = $6, auth_code = $7, "
            "network_reference = $8, decline_code = $9, updated_at = $10, authorized_at = $11, "
            "captured_at = $12 WHERE id = $1",
            payment.id,
            str(payment.status),
            payment.amount_captured,
            payment.amount_refunded,
            payment.amount_refund_pending,
            payment.pending_operation,
            payment.auth_code,
            payment.network_reference,
            payment.decline_code,
            payment.updated_at,
            payment.authorized_at,
            payment.captured_at,
        )

    async def get_payment(
        self,
        tx: Transaction,
        payment_id: str,
        *,
        merchant_id: str | None = None,
        for_update: bool = False,
    ) -> Payment | None:
        lock = " FOR UPDATE" if for_update else ""
        if merchant_id is None:
            row = await conn_of(tx).fetchrow(
                f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE id = $1{lock}", payment_id
            )
        else:
            row = await conn_of(tx).fetchrow(
                f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE id = $1 AND merchant_id = $2{lock}",
                payment_id,
                merchant_id,
            )
        return None if row is None else _payment(row)

    async def list_payments(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Payment]:
        where, args = _filters(merchant_id, filters, ("status", "reference"))
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {_PAYMENT_COLUMNS} FROM payments",
            where=where,
            args=args,
            page=page,
            row_to=_payment,
        )

    async def insert_refund(self, tx: Transaction, refund: Refund) -> None:
        await conn_of(tx).execute(
            f"INSERT INTO refunds ({_REFUND_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
            refund.id,
            refund.payment_id,
            refund.merchant_id,
            refund.amount,
            refund.currency,
            str(refund.status),
            refund.reason,
            refund.attempt_id,
            refund.created_at,
            refund.updated_at,
        )

    async def update_refund(self, tx: Transaction, refund: Refund) -> None:
        await conn_of(tx).execute(
            "UPDATE refunds SET status = $2, updated_at = $3 WHERE id = $1",
            refund.id,
            str(refund.status),
            refund.updated_at,
        )

    async def get_refund(
        self,
        tx: Transaction,
        refund_id: str,
        *,
        merchant_id: str | None = None,
        for_update: bool = False,
    ) -> Refund | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await conn_of(tx).fetchrow(
            f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE id = $1 "
            f"AND ($2::text IS NULL OR merchant_id = $2){lock}",
            refund_id,
            merchant_id,
        )
        return None if row is None else _refund(row)

    async def list_refunds(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Refund]:
        where, args = _filters(merchant_id, filters, ("status", "payment_id"))
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {_REFUND_COLUMNS} FROM refunds",
            where=where,
            args=args,
            page=page,
            row_to=_refund,
        )

    async def insert_attempt(self, tx: Transaction, attempt: Attempt) -> None:
        await conn_of(tx).execute(
            f"INSERT INTO payment_attempts ({_ATTEMPT_COLUMNS}) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
            attempt.id,
            attempt.payment_id,
            attempt.merchant_id,
            str(attempt.operation),
            attempt.refund_id,
            attempt.amount,
            attempt.currency,
            attempt.connector,
            str(attempt.status),
            attempt.response_code,
            attempt.decline_code,
            attempt.auth_code,
            attempt.network_reference,
            attempt.created_at,
            attempt.completed_at,
        )

    async def complete_attempt(self, tx: Transaction, attempt: Attempt) -> bool:
        done = await conn_of(tx).fetchval(
            "UPDATE payment_attempts SET status = $2, response_code = $3, decline_code = $4, "
            "auth_code = $5, network_reference = $6, completed_at = $7 "
            "WHERE id = $1 AND status = 'pending' RETURNING true",
            attempt.id,
            str(attempt.status),
            attempt.response_code,
            attempt.decline_code,
            attempt.auth_code,
            attempt.network_reference,
            attempt.completed_at,
        )
        return bool(done)

    async def claim_pending_attempts(
        self, tx: Transaction, older_than: datetime, limit: int
    ) -> list[Attempt]:
        rows = await conn_of(tx).fetch(
            f"SELECT {_ATTEMPT_COLUMNS} FROM payment_attempts "
            "WHERE status = 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2 "
            "FOR UPDATE SKIP LOCKED",
            older_than,
            limit,
        )
        return [_attempt(r) for r in rows]

    async def claim_expirable(
        self, tx: Transaction, authorized_before: datetime, limit: int
    ) -> list[Payment]:
        rows = await conn_of(tx).fetch(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE status = 'authorized' "
            "AND pending_operation IS NULL AND authorized_at < $1 ORDER BY authorized_at "
            "LIMIT $2 FOR UPDATE SKIP LOCKED",
            authorized_before,
            limit,
        )
        return [_payment(r) for r in rows]

    async def append_txlog(self, tx: Transaction, entries: Sequence[TxlogEntry]) -> None:
        if len(entries) == 1:
            await conn_of(tx).execute(
                f"INSERT INTO txlog ({_TXLOG_COLUMNS}) VALUES ({_params(_TXLOG_TYPES, 1)})",
                *_txlog_args(entries[0]),
            )
            return
        await conn_of(tx).executemany(
            "INSERT INTO txlog (object_type, object_id, payment_id, merchant_id, from_status, "
            "to_status, amount, currency, actor, connector_result, occurred_at) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
            [
                (
                    e.object_type,
                    e.object_id,
                    e.payment_id,
                    e.merchant_id,
                    e.from_status,
                    e.to_status,
                    e.amount,
                    e.currency,
                    e.actor,
                    e.connector_result,
                    e.occurred_at,
                )
                for e in entries
            ],
        )

    async def insert_events(self, tx: Transaction, events: Sequence[Event]) -> None:
        if len(events) == 1:
            e = events[0]
            await conn_of(tx).execute(
                f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6)",
                e.id,
                e.merchant_id,
                e.type,
                e.object_id,
                e.data,
                e.created_at,
            )
            return
        await conn_of(tx).executemany(
            f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6)",
            [(e.id, e.merchant_id, e.type, e.object_id, e.data, e.created_at) for e in events],
        )

    async def get_event(
        self, tx: Transaction, event_id: str, *, merchant_id: str | None = None
    ) -> Event | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = $1 "
            "AND ($2::text IS NULL OR merchant_id = $2)",
            event_id,
            merchant_id,
        )
        return None if row is None else _event(row)

    async def list_events(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Event]:
        where, args = _filters(merchant_id, filters, ("type", "object_id"))
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {_EVENT_COLUMNS} FROM events",
            where=where,
            args=args,
            page=page,
            row_to=_event,
        )
