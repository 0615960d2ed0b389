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

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import add_filters, fetch_page
from clearport.db.statements import Params, Table
from clearport.events.domain import Event
from clearport.events.store import event_values, insert_event_step
from clearport.idempotency.domain import StoredResponse
from clearport.idempotency.store import complete_step, response_values
from clearport.payments.attempts import Attempt
from clearport.payments.domain import Payment, Refund
from clearport.payments.store.rows import (
    ATTEMPT_RESULT,
    ATTEMPTS,
    PAYMENT_CHANGES,
    PAYMENTS,
    REFUNDS,
    attempt_of,
    attempt_row,
    payment_of,
    payment_row,
    refund_of,
    refund_row,
)
from clearport.txlog.domain import TxlogEntry
from clearport.txlog.store import append_entry_step, entry_values


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
        f"a AS (UPDATE {ATTEMPTS.name} SET {_assign(p, 'attempt', ATTEMPT_RESULT)} "
        f"WHERE id = {p('attempt.id')} AND status = 'pending' RETURNING payment_id)",
        f"p AS (UPDATE {PAYMENTS.name} SET {_assign(p, 'payment', PAYMENT_CHANGES)} "
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
_UPDATE_PAYMENT, _UPDATE_PAYMENT_PARAMS = _update(PAYMENTS, PAYMENT_CHANGES)
_GET_PAYMENT = {lock: _get(PAYMENTS, for_update=lock) for lock in (False, True)}
_INSERT_REFUND, _INSERT_REFUND_PARAMS = _insert(REFUNDS)
_UPDATE_REFUND, _UPDATE_REFUND_PARAMS = _update(REFUNDS, ("status", "updated_at"))
_GET_REFUND = {lock: _get(REFUNDS, for_update=lock) for lock in (False, True)}
_INSERT_ATTEMPT, _INSERT_ATTEMPT_PARAMS = _insert(ATTEMPTS)
_COMPLETE_ATTEMPT_PARAMS = Params()
_COMPLETE_ATTEMPT = (
    f"UPDATE {ATTEMPTS.name} SET {_assign(_COMPLETE_ATTEMPT_PARAMS, 'row', ATTEMPT_RESULT)} "
    f"WHERE id = {_COMPLETE_ATTEMPT_PARAMS('row.id')} AND status = 'pending' RETURNING true"
)
_PENDING_ATTEMPTS_PARAMS = Params()
_PENDING_ATTEMPTS = (
    f"SELECT {ATTEMPTS.column_list()} FROM {ATTEMPTS.name} WHERE status = 'pending' "
    f"AND created_at < {_PENDING_ATTEMPTS_PARAMS('older_than')} "
    f"AND (retry_at IS NULL OR retry_at <= {_PENDING_ATTEMPTS_PARAMS('now')}) "
    f"ORDER BY created_at LIMIT {_PENDING_ATTEMPTS_PARAMS('limit')}"
)
_POSTPONE_ATTEMPT = (
    f"UPDATE {ATTEMPTS.name} SET tries = tries + 1, retry_at = $2 "
    "WHERE id = $1 AND status = 'pending'"
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


# What a list of payments may be filtered by (the API uses status and reference; the console
# also the merchant and the card: `bin_prefix` + last 4, fingerprint, each with an index,
# migration 0017).
_PAYMENT_FILTERS = {
    "status": "status",
    "reference": "reference",
    "merchant": "merchant_id",
    "last4": "card_last4",
    "fingerprint": "card_fingerprint",
}

# By the payment_attempts_payment index; ids are time-ordered, so by id is oldest first.
_ATTEMPTS_OF = (
    f"SELECT {ATTEMPTS.column_list()} FROM {ATTEMPTS.name} WHERE payment_id = $1 "
    "ORDER BY id LIMIT $2"
)


def _bin_range(prefix: str, args: list[Any]) -> list[str]:
    """BINs starting with the digits `prefix`, as a range over the (card_bin, card_last4) index
    (stored BINs are 6 or 8 digits, vault.cards.bin_of; LIKE would need a C collation). Digit
    strings order the same in every collation."""
    args.append(prefix)
    clauses = [f"card_bin >= ${len(args)}"]
    upper = f"{int(prefix) + 1:0{len(prefix)}d}"
    if len(upper) == len(prefix):  # "999999" has no upper bound of its length
        args.append(upper)
        clauses.append(f"card_bin < ${len(args)}")
    return clauses


class PgPaymentStore:
    async def insert_pending(
        self, tx: Transaction, payment: Payment, attempt: Attempt, entry: TxlogEntry
    ) -> None:
        values = {
            **PAYMENTS.named("payment", payment_row(payment)),
            **ATTEMPTS.named("attempt", attempt_row(attempt)),
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
            **_assigned("attempt", attempt_row(attempt), ("id", *ATTEMPT_RESULT)),
            **_assigned("payment", payment_row(payment), ("id", *PAYMENT_CHANGES)),
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
        values = _assigned("row", payment_row(payment), ("id", *PAYMENT_CHANGES))
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
        return None if row is None else payment_of(row)

    async def list_payments(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Payment]:
        where, args = _scoped(merchant_id)
        add_filters(where, args, filters, equal=_PAYMENT_FILTERS)
        if (bin_prefix := filters.get("bin_prefix")) is not None:
            where.extend(_bin_range(str(bin_prefix), args))
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {PAYMENTS.column_list()} FROM {PAYMENTS.name}",
            where=where,
            args=args,
            page=page,
            row_to=payment_of,
        )

    async def insert_refund(self, tx: Transaction, refund: Refund) -> None:
        values = REFUNDS.named("row", refund_row(refund))
        await conn_of(tx).execute(_INSERT_REFUND, *_INSERT_REFUND_PARAMS.args(values))

    async def update_refund(self, tx: Transaction, refund: Refund) -> None:
        values = _assigned("row", refund_row(refund), ("id", "status", "updated_at"))
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
        return None if row is None else refund_of(row)

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
            row_to=refund_of,
        )

    async def insert_attempt(self, tx: Transaction, attempt: Attempt) -> None:
        values = ATTEMPTS.named("row", attempt_row(attempt))
        await conn_of(tx).execute(_INSERT_ATTEMPT, *_INSERT_ATTEMPT_PARAMS.args(values))

    async def complete_attempt(self, tx: Transaction, attempt: Attempt) -> bool:
        values = _assigned("row", attempt_row(attempt), ("id", *ATTEMPT_RESULT))
        done = await conn_of(tx).fetchval(_COMPLETE_ATTEMPT, *_COMPLETE_ATTEMPT_PARAMS.args(values))
        return bool(done)

    async def attempts_of(self, tx: Transaction, payment_id: str, limit: int) -> list[Attempt]:
        rows = await conn_of(tx).fetch(_ATTEMPTS_OF, payment_id, limit)
        return [attempt_of(r) for r in rows]

    async def pending_attempts(
        self, tx: Transaction, older_than: datetime, now: datetime, limit: int
    ) -> list[Attempt]:
        rows = await conn_of(tx).fetch(
            _PENDING_ATTEMPTS,
            *_PENDING_ATTEMPTS_PARAMS.args(older_than=older_than, now=now, limit=limit),
        )
        return [attempt_of(r) for r in rows]

    async def postpone_attempt(self, tx: Transaction, attempt_id: str, retry_at: datetime) -> None:
        await conn_of(tx).execute(_POSTPONE_ATTEMPT, attempt_id, retry_at)

    async def claim_expirable(
        self, tx: Transaction, authorized_before: datetime, limit: int
    ) -> list[Payment]:
        rows = await conn_of(tx).fetch(
            _CLAIM_EXPIRABLE, *_CLAIM_EXPIRABLE_PARAMS.args(before=authorized_before, limit=limit)
        )
        return [payment_of(r) for r in rows]
