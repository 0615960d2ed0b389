"""Payment persistence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.events.domain import Event
from clearport.payments.domain import Attempt, Payment, Refund
from clearport.txlog.domain import TxlogEntry


class PaymentStore(Protocol):
    """Payments, refunds, attempts, the transaction log and the outbox, in the caller's tx."""

    async def require_cvc(self, tx: Transaction, merchant_id: str) -> bool: ...
    async def merchant_gate(self, tx: Transaction, merchant_id: str) -> tuple[str, bool] | None:
        """(merchant status, require_cvc) in one read; None if no such merchant."""
        ...

    async def insert_pending(
        self, tx: Transaction, payment: Payment, attempt: Attempt, entry: TxlogEntry
    ) -> None: ...
    async def finish_authorization(
        self,
        tx: Transaction,
        attempt: Attempt,
        payment: Payment,
        entry: TxlogEntry,
        event: Event,
    ) -> bool:
        """Complete a pending authorization in one statement; False if it was not pending."""
        ...

    async def finish_authorization_alone(
        self,
        attempt: Attempt,
        payment: Payment,
        entry: TxlogEntry,
        event: Event,
        response: tuple[str, str, int, bytes] | None,
    ) -> bool:
        """The same as one autocommit statement that also stores the idempotent response
        (scope, key, status, body): used when no other write (ledger) must join it."""
        ...

    async def set_require_cvc(self, tx: Transaction, merchant_id: str, value: bool) -> None: ...
    async def insert_payment(self, tx: Transaction, payment: Payment) -> None: ...
    async def update_payment(self, tx: Transaction, payment: Payment) -> None: ...
    async def get_payment(
        self,
        tx: Transaction,
        payment_id: str,
        *,
        merchant_id: str | None = None,
        for_update: bool = False,
    ) -> Payment | None: ...
    async def list_payments(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Payment]: ...
    async def insert_refund(self, tx: Transaction, refund: Refund) -> None: ...
    async def update_refund(self, tx: Transaction, refund: Refund) -> None: ...
    async def get_refund(
        self,
        tx: Transaction,
        refund_id: str,
        *,
        merchant_id: str | None = None,
        for_update: bool = False,
    ) -> Refund | None: ...
    async def list_refunds(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Refund]: ...
    async def insert_attempt(self, tx: Transaction, attempt: Attempt) -> None: ...
    async def complete_attempt(self, tx: Transaction, attempt: Attempt) -> bool:
        """Write the result only if the attempt is still pending; False if someone else did."""
        ...

    async def claim_pending_attempts(
        self, tx: Transaction, older_than: datetime, limit: int
    ) -> list[Attempt]:
        """Pending attempts, locked (SKIP LOCKED) so concurrent janitors split the work."""
        ...

    async def claim_expirable(
        self, tx: Transaction, authorized_before: datetime, limit: int
    ) -> list[Payment]: ...
    async def append_txlog(self, tx: Transaction, entries: Sequence[TxlogEntry]) -> None: ...
    async def insert_events(self, tx: Transaction, events: Sequence[Event]) -> None: ...
    async def get_event(
        self, tx: Transaction, event_id: str, *, merchant_id: str | None = None
    ) -> Event | None: ...
    async def list_events(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Event]: ...
