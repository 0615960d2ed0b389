"""Payments, refunds and attempts in PostgreSQL.

Statements are built once, with named parameters (`db.statements`). The two writes of an
authorization are single statements (docs/decisions/0300): a chain of CTE steps, where the
steps on other features' tables come from the stores that own them (`txlog.store`,
`events.store`, `idempotency.store`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import add_filters, fetch_page
from clearport.db.statements import Params, Table
from clearport.events.domain import Event
from clearport.events.store import event_values, insert_event_step
from clearport.idempotency.domain import StoredResponse
from clearport.idempotency.store import complete_step, response_values
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
from clearport.txlog.store import append_entry_step, entry_values

PAYMENTS = Table(
    "payments",
    (
        ("id", "text"),
        ("merchant_id", "text"),
        ("amount", "bigint"),
        ("currency", "text"),
        ("status", "text"),
        ("capture_requested", "boolean"),
        ("amount_captured", "bigint"),
        ("amount_refunded", "bigint"),
        ("amount_refund_pending", "bigint"),
        ("pending_operation", "text"),
        ("card_brand", "text"),
        ("card_bin", "text"),
        ("card_last4", "text"),
        ("card_exp_month", "integer"),
        ("card_exp_year", "integer"),
        ("card_fingerprint", "text"),
        ("token_id", "text"),
        ("auth_attempt_id", "text"),
        ("auth_code", "text"),
        ("network_reference", "text"),
        ("decline_code", "text"),
        ("connector", "text"),
        ("routing", "jsonb"),
        ("reference", "text"),
        ("metadata", "jsonb"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("authorized_at", "timestamptz"),
        ("captured_at", "timestamptz"),
    ),
)
# What a state change of a payment writes; the other columns are fixed at creation.
_PAYMENT_CHANGES = (
    "status",
    "amount_captured",
    "amount_refunded",
    "amount_refund_pending",
    "pending_operation",
    "auth_code",
    "network_reference",
    "decline_code",
    "updated_at",
    "authorized_at",
    "captured_at",
)
ATTEMPTS = Table(
    "payment_attempts",
    (
        ("id", "text"),
        ("payment_id", "text"),
        ("merchant_id", "text"),
        ("operation", "text"),
        ("refund_id", "text"),
        ("amount", "bigint"),
        ("currency", "text"),
        ("connector", "text"),
        ("status", "text"),
        ("response_code", "text"),
        ("decline_code", "text"),
        ("auth_code", "text"),
        ("network_reference", "text"),
        ("created_at", "timestamptz"),
        ("completed_at", "timestamptz"),
    ),
)
# What an attempt's answer writes.
_ATTEMPT_RESULT = (
    "status",
    "response_code",
    "decline_code",
    "auth_code",
    "network_reference",
    "completed_at",
)
REFUNDS = Table(
    "refunds",
    (
        ("id", "text"),
        ("payment_id", "text"),
        ("merchant_id", "text"),
        ("amount", "bigint"),
        ("currency", "text"),
        ("status", "text"),
        ("reason", "text"),
        ("attempt_id", "text"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ),
)


def _payment_row(p: Payment) -> dict[str, Any]:
    return {
        "id": p.id,
        "merchant_id": p.merchant_id,
        "amount": p.amount,
        "currency": p.currency,
        "status": str(p.status),
        "capture_requested": p.capture_requested,
        "amount_captured": p.amount_captured,
        "amount_refunded": p.amount_refunded,
        "amount_refund_pending": p.amount_refund_pending,
        "pending_operation": p.pending_operation,
        "card_brand": p.card_brand,
        "card_bin": p.card_bin,
        "card_last4": p.card_last4,
        "card_exp_month": p.card_exp_month,
        "card_exp_year": p.card_exp_year,
        "card_fingerprint": p.card_fingerprint,
        "token_id": p.token_id,
        "auth_attempt_id": p.auth_attempt_id,
        "auth_code": p.auth_code,
        "network_reference": p.network_reference,
        "decline_code": p.decline_code,
        "connector": p.connector,
        "routing": p.routing,
        "reference": p.reference,
        "metadata": p.metadata,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "authorized_at": p.authorized_at,
        "captured_at": p.captured_at,
    }


def _payment(row: asyncpg.Record) -> Payment:
    return Payment(
        id=row["id"],
        merchant_id=row["merchant_id"],
        amount=row["amount"],
        currency=row["currency"],
        status=PaymentStatus(row["status"]),
        capture_requested=row["capture_requested"],
        amount_captured=row["amount_captured"],
        amount_refunded=row["amount_refunded"],
        amount_refund_pending=row["amount_refund_pending"],
        pending_operation=row["pending_operation"],
        card_brand=row["card_brand"],
        card_bin=row["card_bin"],
        card_last4=row["card_last4"],
        card_exp_month=row["card_exp_month"],
        card_exp_year=row["card_exp_year"],
        card_fingerprint=row["card_fingerprint"],
        token_id=row["token_id"],
        auth_attempt_id=row["auth_attempt_id"],
        auth_code=row["auth_code"],
        network_reference=row["network_reference"],
        decline_code=row["decline_code"],
        connector=row["connector"],
        routing=row["routing"],
        reference=row["reference"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        authorized_at=row["authorized_at"],
        captured_at=row["captured_at"],
    )


def _attempt_row(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "payment_id": a.payment_id,
        "merchant_id": a.merchant_id,
        "operation": str(a.operation),
        "refund_id": a.refund_id,
        "amount": a.amount,
        "currency": a.currency,
        "connector": a.connector,
        "status": str(a.status),
        "response_code": a.response_code,
        "decline_code": a.decline_code,
        "auth_code": a.auth_code,
        "network_reference": a.network_reference,
        "created_at": a.created_at,
        "completed_at": a.completed_at,
    }


def _attempt(row: asyncpg.Record) -> Attempt:
    return Attempt(
        id=row["id"],
        payment_id=row["payment_id"],
        merchant_id=row["merchant_id"],
        operation=Operation(row["operation"]),
        refund_id=row["refund_id"],
        amount=row["amount"],
        currency=row["currency"],
        connector=row["connector"],
        status=AttemptStatus(row["status"]),
        response_code=row["response_code"],
        decline_code=row["decline_code"],
        auth_code=row["auth_code"],
        network_reference=row["network_reference"],
        created_at=row["created_at"],
        completed_at=row["completed_at"],
    )


def _refund_row(r: Refund) -> dict[str, Any]:
    return {
        "id": r.id,
        "payment_id": r.payment_id,
        "merchant_id": r.merchant_id,
        "amount": r.amount,
        "currency": r.currency,
        "status": str(r.status),
        "reason": r.reason,
        "attempt_id": r.attempt_id,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


def _refund(row: asyncpg.Record) -> Refund:
    return Refund(
        id=row["id"],
        payment_id=row["payment_id"],
        merchant_id=row["merchant_id"],
        amount=row["amount"],
        currency=row["currency"],
        status=RefundStatus(row["status"]),
        reason=row["reason"],
        attempt_id=row["attempt_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _assign(p: Params, name: str, columns: Sequence[str]) -> str:
    """`column = $n, ...` with the parameters named `<name>.<column>`."""
    return ", ".join(f"{column} = {p(f'{name}.{column}')}" for column in columns)


def _assigned(name: str, row: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    return {f"{name}.{column}": row[column] for column in columns}


def _insert(table: Table) -> tuple[str, Params]:
    p = Params()
    return (
        f"INSERT INTO {table.name} ({table.column_list()}) VALUES ({table.values(p, 'row')})",
        p,
    )


def _insert_pending() -> tuple[str, Params]:
    """The first write of an authorization: payment, attempt and txlog entry."""
    p = Params()
    sql = (
        f"WITH p AS (INSERT INTO {PAYMENTS.name} ({PAYMENTS.column_list()}) "
        f"VALUES ({PAYMENTS.values(p, 'payment')}) RETURNING id), "
        f"a AS (INSERT INTO {ATTEMPTS.name} ({ATTEMPTS.column_list()}) "
        f"SELECT {ATTEMPTS.values(p, 'attempt')} FROM p RETURNING id) "
        f"{append_entry_step(p, 'entry', once_per_row_of='a')}"
    )
    return sql, p


def _finish_authorization(*, storing_response: bool) -> tuple[str, Params]:
    """The second write: attempt and payment, only while both are pending, then the entry, the
    event and (`storing_response`) the idempotent response, only if they were."""
    p = Params()
    steps = [
        f"a AS (UPDATE {ATTEMPTS.name} SET {_assign(p, 'attempt', _ATTEMPT_RESULT)} "
        f"WHERE id = {p('attempt.id')} AND status = 'pending' RETURNING payment_id)",
        f"p AS (UPDATE {PAYMENTS.name} SET {_assign(p, 'payment', _PAYMENT_CHANGES)} "
        f"WHERE id = {p('payment.id')} AND status = 'pending' "
        "AND id IN (SELECT payment_id FROM a) RETURNING id)",
        f"t AS ({append_entry_step(p, 'entry', once_per_row_of='p')})",
    ]
    if storing_response:
        steps.append(f"i AS ({complete_step(p, 'response', if_any_row_in='p')})")
    last = insert_event_step(p, "event", once_per_row_of="p")
    return f"WITH {', '.join(steps)} {last} RETURNING true", p


def _update(table: Table, columns: Sequence[str]) -> tuple[str, Params]:
    p = Params()
    return (
        f"UPDATE {table.name} SET {_assign(p, 'row', columns)} WHERE id = {p('row.id')}",
        p,
    )


def _get(table: Table, *, for_update: bool) -> tuple[str, Params]:
    """One row by id, of one merchant unless the merchant parameter is NULL."""
    p = Params()
    lock = " FOR UPDATE" if for_update else ""
    return (
        f"SELECT {table.column_list()} FROM {table.name} WHERE id = {p('id')} "
        f"AND ({p('merchant_id', 'text')} IS NULL OR merchant_id = {p('merchant_id')}){lock}",
        p,
    )


_INSERT_PENDING, _INSERT_PENDING_PARAMS = _insert_pending()
_FINISH_AUTHORIZATION, _FINISH_AUTHORIZATION_PARAMS = _finish_authorization(storing_response=False)
# Run alone this is a transaction of its own: BEGIN, COMMIT and a separate UPDATE are saved.
_FINISH_AUTHORIZATION_STORING, _FINISH_AUTHORIZATION_STORING_PARAMS = _finish_authorization(
    storing_response=True
)
_UPDATE_PAYMENT, _UPDATE_PAYMENT_PARAMS = _update(PAYMENTS, _PAYMENT_CHANGES)
_GET_PAYMENT = {lock: _get(PAYMENTS, for_update=lock) for lock in (False, True)}
_INSERT_REFUND, _INSERT_REFUND_PARAMS = _insert(REFUNDS)
_UPDATE_REFUND, _UPDATE_REFUND_PARAMS = _update(REFUNDS, ("status", "updated_at"))
_GET_REFUND = {lock: _get(REFUNDS, for_update=lock) for lock in (False, True)}
_INSERT_ATTEMPT, _INSERT_ATTEMPT_PARAMS = _insert(ATTEMPTS)
_COMPLETE_ATTEMPT_PARAMS = Params()
_COMPLETE_ATTEMPT = (
    f"UPDATE {ATTEMPTS.name} SET {_assign(_COMPLETE_ATTEMPT_PARAMS, 'row', _ATTEMPT_RESULT)} "
    f"WHERE id = {_COMPLETE_ATTEMPT_PARAMS('row.id')} AND status = 'pending' RETURNING true"
)
_PENDING_ATTEMPTS_PARAMS = Params()
_PENDING_ATTEMPTS = (
    f"SELECT {ATTEMPTS.column_list()} FROM {ATTEMPTS.name} WHERE status = 'pending' "
    f"AND created_at < {_PENDING_ATTEMPTS_PARAMS('older_than')} ORDER BY created_at "
    f"LIMIT {_PENDING_ATTEMPTS_PARAMS('limit')}"
)
_CLAIM_EXPIRABLE_PARAMS = Params()
_CLAIM_EXPIRABLE = (
    f"SELECT {PAYMENTS.column_list()} FROM {PAYMENTS.name} WHERE status = 'authorized' "
    f"AND pending_operation IS NULL AND authorized_at < {_CLAIM_EXPIRABLE_PARAMS('before')} "
    f"ORDER BY authorized_at LIMIT {_CLAIM_EXPIRABLE_PARAMS('limit')} FOR UPDATE SKIP LOCKED"
)


def _scoped(merchant_id: str | None) -> tuple[list[str], list[Any]]:
    """The WHERE clauses and arguments of a list, starting with its merchant (if any)."""
    return (["merchant_id = $1"], [merchant_id]) if merchant_id is not None else ([], [])


class PgPaymentStore:
    async def insert_pending(
        self, tx: Transaction, payment: Payment, attempt: Attempt, entry: TxlogEntry
    ) -> None:
        values = {
            **PAYMENTS.named("payment", _payment_row(payment)),
            **ATTEMPTS.named("attempt", _attempt_row(attempt)),
            **entry_values("entry", entry),
        }
        await conn_of(tx).execute(_INSERT_PENDING, *_INSERT_PENDING_PARAMS.args(values))

    async def finish_authorization(
        self,
        tx: Transaction,
        attempt: Attempt,
        payment: Payment,
        entry: TxlogEntry,
        event: Event,
        response: StoredResponse | None = None,
    ) -> bool:
        values = {
            **_assigned("attempt", _attempt_row(attempt), ("id", *_ATTEMPT_RESULT)),
            **_assigned("payment", _payment_row(payment), ("id", *_PAYMENT_CHANGES)),
            **entry_values("entry", entry),
            **event_values("event", event),
        }
        if response is None:
            sql, args = _FINISH_AUTHORIZATION, _FINISH_AUTHORIZATION_PARAMS.args(values)
        else:
            values.update(response_values("response", response))
            sql = _FINISH_AUTHORIZATION_STORING
            args = _FINISH_AUTHORIZATION_STORING_PARAMS.args(values)
        return bool(await conn_of(tx).fetchval(sql, *args))

    async def update_payment(self, tx: Transaction, payment: Payment) -> None:
        values = _assigned("row", _payment_row(payment), ("id", *_PAYMENT_CHANGES))
        await conn_of(tx).execute(_UPDATE_PAYMENT, *_UPDATE_PAYMENT_PARAMS.args(values))

    async def get_payment(
        self,
        tx: Transaction,
        payment_id: str,
        *,
        merchant_id: str | None = None,
        for_update: bool = False,
    ) -> Payment | None:
        sql, p = _GET_PAYMENT[for_update]
        row = await conn_of(tx).fetchrow(sql, *p.args(id=payment_id, merchant_id=merchant_id))
        return None if row is None else _payment(row)

    async def list_payments(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Payment]:
        where, args = _scoped(merchant_id)
        add_filters(where, args, filters, equal={"status": "status", "reference": "reference"})
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {PAYMENTS.column_list()} FROM {PAYMENTS.name}",
            where=where,
            args=args,
            page=page,
            row_to=_payment,
        )

    async def insert_refund(self, tx: Transaction, refund: Refund) -> None:
        values = REFUNDS.named("row", _refund_row(refund))
        await conn_of(tx).execute(_INSERT_REFUND, *_INSERT_REFUND_PARAMS.args(values))

    async def update_refund(self, tx: Transaction, refund: Refund) -> None:
        values = _assigned("row", _refund_row(refund), ("id", "status", "updated_at"))
        await conn_of(tx).execute(_UPDATE_REFUND, *_UPDATE_REFUND_PARAMS.args(values))

    async def get_refund(
        self,
        tx: Transaction,
        refund_id: str,
        *,
        merchant_id: str | None = None,
        for_update: bool = False,
    ) -> Refund | None:
        sql, p = _GET_REFUND[for_update]
        row = await conn_of(tx).fetchrow(sql, *p.args(id=refund_id, merchant_id=merchant_id))
        return None if row is None else _refund(row)

    async def list_refunds(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Refund]:
        where, args = _scoped(merchant_id)
        add_filters(where, args, filters, equal={"status": "status", "payment_id": "payment_id"})
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {REFUNDS.column_list()} FROM {REFUNDS.name}",
            where=where,
            args=args,
            page=page,
            row_to=_refund,
        )

    async def insert_attempt(self, tx: Transaction, attempt: Attempt) -> None:
        values = ATTEMPTS.named("row", _attempt_row(attempt))
        await conn_of(tx).execute(_INSERT_ATTEMPT, *_INSERT_ATTEMPT_PARAMS.args(values))

    async def complete_attempt(self, tx: Transaction, attempt: Attempt) -> bool:
        values = _assigned("row", _attempt_row(attempt), ("id", *_ATTEMPT_RESULT))
        done = await conn_of(tx).fetchval(_COMPLETE_ATTEMPT, *_COMPLETE_ATTEMPT_PARAMS.args(values))
        return bool(done)

    async def pending_attempts(
        self, tx: Transaction, older_than: datetime, limit: int
    ) -> list[Attempt]:
        rows = await conn_of(tx).fetch(
            _PENDING_ATTEMPTS, *_PENDING_ATTEMPTS_PARAMS.args(older_than=older_than, limit=limit)
        )
        return [_attempt(r) for r in rows]

    async def claim_expirable(
        self, tx: Transaction, authorized_before: datetime, limit: int
    ) -> list[Payment]:
        rows = await conn_of(tx).fetch(
            _CLAIM_EXPIRABLE, *_CLAIM_EXPIRABLE_PARAMS.args(before=authorized_before, limit=limit)
        )
        return [_payment(r) for r in rows]
