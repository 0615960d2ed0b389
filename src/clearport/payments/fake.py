"""An in-memory `PaymentStore` for the fast test tier.

Like the real one, the two writes of an authorization also write to the tables other features
own (the txlog entry, the event, the idempotent response): here, to their fakes. Objects are
copied in and out, so a use case only changes what it writes back.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from clearport.core.pagination import Page, PageRequest, filtered, paginate
from clearport.core.uow import Transaction
from clearport.events.domain import Event
from clearport.events.fake import FakeEventStore
from clearport.idempotency.domain import StoredResponse
from clearport.idempotency.fake import FakeIdempotencyStore
from clearport.payments.attempts import Attempt
from clearport.payments.domain import AttemptStatus, Payment, PaymentStatus, Refund
from clearport.txlog.domain import TxlogEntry
from clearport.txlog.fake import FakeTxlogStore

_State = tuple[dict[str, Payment], dict[str, Refund], dict[str, Attempt]]


class FakePaymentStore:
    def __init__(
        self, txlog: FakeTxlogStore, events: FakeEventStore, idempotency: FakeIdempotencyStore
    ) -> None:
        self._txlog = txlog
        self._events = events
        self._idempotency = idempotency
        self.payments: dict[str, Payment] = {}
        self.refunds: dict[str, Refund] = {}
        self.attempts: dict[str, Attempt] = {}

    def snapshot(self) -> object:
        return copy.deepcopy((self.payments, self.refunds, self.attempts))

    def restore(self, snapshot: object) -> None:
        self.payments, self.refunds, self.attempts = copy.deepcopy(cast(_State, snapshot))

    async def insert_pending(
        self, tx: Transaction, payment: Payment, attempt: Attempt, entry: TxlogEntry
    ) -> None:
        self.payments[payment.id] = copy.deepcopy(payment)
        self.attempts[attempt.id] = replace(attempt)
        await self._txlog.append(tx, [entry])

    async def finish_authorization(
        self,
        tx: Transaction,
        attempt: Attempt,
        payment: Payment,
        entry: TxlogEntry,
        event: Event,
        response: StoredResponse | None = None,
    ) -> bool:
        stored_attempt = self.attempts.get(attempt.id)
        stored = self.payments.get(payment.id)
        if stored_attempt is None or stored_attempt.status is not AttemptStatus.PENDING:
            return False
        self.attempts[attempt.id] = replace(attempt)
        if stored is None or stored.status is not PaymentStatus.PENDING:
            return False  # the attempt is written, nothing else (as in the real statement)
        self.payments[payment.id] = copy.deepcopy(payment)
        await self._txlog.append(tx, [entry])
        if response is not None:
            self._idempotency.store(response)
        await self._events.insert(tx, [event])
        return True

    async def update_payment(self, tx: Transaction, payment: Payment) -> None:
        self.payments[payment.id] = copy.deepcopy(payment)

    async def get_payment(
        self,
        tx: Transaction,
        payment_id: str,
        *,
        merchant_id: str | None = None,
        for_update: bool = False,
    ) -> Payment | None:
        payment = self.payments.get(payment_id)
        if payment is None or merchant_id not in (None, payment.merchant_id):
            return None
        return copy.deepcopy(payment)

    async def list_payments(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Payment]:
        bin_prefix = filters.get("bin_prefix")
        mine = [
            p
            for p in self.payments.values()
            if merchant_id in (None, p.merchant_id)
            and (bin_prefix is None or p.card_bin.startswith(bin_prefix))
        ]
        chosen = filtered(
            mine,
            filters,
            equal={
                "status": lambda p: str(p.status),
                "reference": lambda p: p.reference,
                "merchant": lambda p: p.merchant_id,
                "last4": lambda p: p.card_last4,
                "fingerprint": lambda p: p.card_fingerprint,
            },
            created_at=lambda p: p.created_at,
        )
        return paginate([copy.deepcopy(p) for p in chosen], page, lambda p: p.id)

    async def insert_refund(self, tx: Transaction, refund: Refund) -> None:
        self.refunds[refund.id] = replace(refund)

    async def update_refund(self, tx: Transaction, refund: Refund) -> None:
        stored = self.refunds[refund.id]
        self.refunds[refund.id] = replace(
            stored, status=refund.status, updated_at=refund.updated_at
        )

    async def get_refund(
        self,
        tx: Transaction,
        refund_id: str,
        *,
        merchant_id: str | None = None,
        for_update: bool = False,
    ) -> Refund | None:
        refund = self.refunds.get(refund_id)
        if refund is None or merchant_id not in (None, refund.merchant_id):
            return None
        return replace(refund)

    async def list_refunds(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Refund]:
        mine = [r for r in self.refunds.values() if merchant_id in (None, r.merchant_id)]
        chosen = filtered(
            mine,
            filters,
            equal={"status": lambda r: str(r.status), "payment_id": lambda r: r.payment_id},
            created_at=lambda r: r.created_at,
        )
        return paginate([replace(r) for r in chosen], page, lambda r: r.id)

    async def insert_attempt(self, tx: Transaction, attempt: Attempt) -> None:
        self.attempts[attempt.id] = replace(attempt)

    async def complete_attempt(self, tx: Transaction, attempt: Attempt) -> bool:
        stored = self.attempts.get(attempt.id)
        if stored is None or stored.status is not AttemptStatus.PENDING:
            return False
        self.attempts[attempt.id] = replace(attempt)
        return True

    async def attempts_of(self, tx: Transaction, payment_id: str, limit: int) -> list[Attempt]:
        mine = [a for a in self.attempts.values() if a.payment_id == payment_id]
        return [replace(a) for a in sorted(mine, key=lambda a: (a.created_at, a.id))[:limit]]

    async def pending_attempts(
        self, tx: Transaction, older_than: datetime, now: datetime, limit: int
    ) -> list[Attempt]:
        pending = [
            a
            for a in self.attempts.values()
            if a.status is AttemptStatus.PENDING
            and a.created_at < older_than
            and (a.retry_at is None or a.retry_at <= now)
        ]
        return [replace(a) for a in sorted(pending, key=lambda a: a.created_at)[:limit]]

    async def postpone_attempt(self, tx: Transaction, attempt_id: str, retry_at: datetime) -> None:
        stored = self.attempts.get(attempt_id)
        if stored is not None and stored.status is AttemptStatus.PENDING:
            self.attempts[attempt_id] = replace(stored, tries=stored.tries + 1, retry_at=retry_at)

    async def claim_expirable(
        self, tx: Transaction, authorized_before: datetime, limit: int
    ) -> list[Payment]:
        expirable = [
            p
            for p in self.payments.values()
            if p.status is PaymentStatus.AUTHORIZED
            and p.pending_operation is None
            and p.authorized_at is not None
            and p.authorized_at < authorized_before
        ]
        chosen = sorted(expirable, key=lambda p: p.authorized_at or authorized_before)[:limit]
        return [copy.deepcopy(p) for p in chosen]
