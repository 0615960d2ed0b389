"""What the disputes service needs from outside: its store, the payment it disputes, the
merchant's available balance (settlement's), evidence files, and how the API shows a dispute."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.disputes.domain import Dispute
from clearport.files.domain import StoredFile
from clearport.payments.domain import Payment


class DisputeStore(Protocol):
    async def insert(self, tx: Transaction, dispute: Dispute) -> bool:
        """False (and nothing written) if a dispute has its network case already."""
        ...

    async def update(self, tx: Transaction, dispute: Dispute) -> None: ...
    async def get(
        self,
        tx: Transaction,
        dispute_id: str,
        *,
        merchant_id: str | None = None,
        for_update: bool = False,
    ) -> Dispute | None: ...
    async def open_inquiry(
        self, tx: Transaction, connector: str, network_case_id: str
    ) -> Dispute | None:
        """The open inquiry of this network case, locked, if any."""
        ...

    async def list(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Dispute]:
        """Filters: `payment_id`, `status`, `created_gte`, `created_lt`."""
        ...


class DisputedPayments(Protocol):
    """The payment a dispute is about (payments.disputed implements it)."""

    async def lock(self, tx: Transaction, payment_id: str) -> Payment | None: ...
    def require_captured(self, payment: Payment) -> None: ...
    async def record(self, tx: Transaction, payment: Payment, taken_minor: int) -> None: ...


class FreeAvailable(Protocol):
    """The merchant's available balance beyond its pending payouts: failed payouts' money,
    which the next settlement would pay (settlement's store implements it)."""

    async def lock_free_available(self, tx: Transaction, merchant_id: str, currency: str) -> int:
        """The amount, the merchant x currency locked until the transaction ends. Take it before
        any ledger post of the transaction: ledger posts lock accounts, this lock comes first
        everywhere (settlement's repayments take it too)."""
        ...


class EvidenceFiles(Protocol):
    async def evidence_file(
        self, tx: Transaction, file_id: str, merchant_id: str
    ) -> StoredFile | None: ...


class Representation(Protocol):
    """How the API shows a dispute (`http.representation` implements it): events carry it, and
    the stored idempotent response is its bytes."""

    def dispute(self, dispute: Dispute) -> dict[str, Any]: ...
    def response_body(self, shown: dict[str, Any]) -> bytes: ...
