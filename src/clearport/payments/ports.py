"""What the payment services need from the outside: their store, the card vault, and how the
API shows a payment or a refund."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from clearport.core.errors import Field
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.events.domain import Event
from clearport.idempotency.domain import StoredResponse
from clearport.payments.attempts import Attempt
from clearport.payments.domain import Payment, Refund
from clearport.txlog.domain import TxlogEntry
from clearport.vault.cards import CardInput
from clearport.vault.service import StoredCard


class PaymentStore(Protocol):
    """Payments, refunds and attempts, in the caller's transaction. The two writes of an
    authorization are one statement each, with the txlog entry, the event and the stored
    response they go with (docs/decisions/0300)."""

    async def insert_pending(
        self, tx: Transaction, payment: Payment, attempt: Attempt, entry: TxlogEntry
    ) -> None:
        """The new payment, its pending authorization attempt and the entry of its creation."""
        ...

    async def finish_authorization(
        self,
        tx: Transaction,
        attempt: Attempt,
        payment: Payment,
        entry: TxlogEntry,
        event: Event,
        response: StoredResponse | None = None,
    ) -> bool:
        """Complete a pending authorization (attempt, payment, entry, event and, if given, the
        idempotent response) in one statement; False if it was no longer pending. Run alone in
        an autocommit block it is a transaction of its own."""
        ...

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
    ) -> Page[Payment]:
        """Filters: `status`, `reference`, `created_gte`, `created_lt`."""
        ...

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
    ) -> Page[Refund]:
        """Filters: `status`, `payment_id`, `created_gte`, `created_lt`."""
        ...

    async def insert_attempt(self, tx: Transaction, attempt: Attempt) -> None: ...
    async def complete_attempt(self, tx: Transaction, attempt: Attempt) -> bool:
        """Write the result only if the attempt is still pending; False if someone else did."""
        ...

    async def attempts_of(self, tx: Transaction, payment_id: str, limit: int) -> list[Attempt]:
        """A payment's attempts (authorizations, failovers, captures, voids, refunds,
        reversals), oldest first, at most `limit`."""
        ...

    async def pending_attempts(
        self, tx: Transaction, older_than: datetime, now: datetime, limit: int
    ) -> list[Attempt]:
        """Attempts pending since before `older_than` and not postponed past `now`, oldest
        first: the janitor's work."""
        ...

    async def postpone_attempt(self, tx: Transaction, attempt_id: str, retry_at: datetime) -> None:
        """Count one more try of a still pending attempt and leave it until `retry_at`."""
        ...

    async def claim_expirable(
        self, tx: Transaction, authorized_before: datetime, limit: int
    ) -> list[Payment]:
        """Authorized payments past the window with no operation in progress, locked (SKIP
        LOCKED) so concurrent janitors claim different ones."""
        ...


class CardVault(Protocol):
    """The part of the vault a payment uses (`vault.service.VaultService` is the real one)."""

    async def tokenize(self, tx: Transaction, merchant_id: str, card: CardInput) -> StoredCard: ...
    async def get_card(
        self, tx: Transaction, merchant_id: str, token_id: str, *, field: Field | str = "token"
    ) -> StoredCard: ...
    async def reveal_for_connector(
        self,
        tx: Transaction,
        merchant_id: str,
        token_id: str,
        *,
        payment_id: str,
        connector: str,
    ) -> CardInput:
        """The card behind a token, for the one connector call (audited)."""
        ...


class Representation(Protocol):
    """How the API shows a payment and a refund (`http.representation` implements it). The
    services need it inside their transactions: an event carries the object as shown, and the
    stored idempotent response is the bytes a retry gets back."""

    def payment(self, payment: Payment) -> dict[str, Any]: ...
    def refund(self, refund: Refund) -> dict[str, Any]: ...
    def response_body(self, shown: dict[str, Any]) -> bytes: ...
