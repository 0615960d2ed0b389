"""The Protocols the use cases need. Adapters implement them; wiring.py picks which.

Repositories are stateless: every method takes the `Transaction` it runs in, so one use case can
write several repositories atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from clearport.domain import ledger
from clearport.domain.audit import AuditEvent
from clearport.domain.merchants import ApiKey, Merchant
from clearport.domain.pagination import Page, PageRequest

# --- foundation -------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime: ...


class Transaction(Protocol):
    """An open database transaction; opaque to the use cases."""


class UnitOfWork(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...


class MerchantRepository(Protocol):
    async def insert(self, tx: Transaction, merchant: Merchant) -> None: ...
    async def get(
        self, tx: Transaction, merchant_id: str, *, for_update: bool = False
    ) -> Merchant | None: ...
    async def list(self, tx: Transaction, page: PageRequest) -> Page[Merchant]: ...
    async def update(self, tx: Transaction, merchant: Merchant) -> None: ...


class ApiKeyRepository(Protocol):
    async def insert(
        self, tx: Transaction, key: ApiKey, secret_hash: bytes, created_by: str
    ) -> None: ...
    async def get(self, tx: Transaction, key_id: str) -> ApiKey | None: ...
    async def find_by_hash(
        self, tx: Transaction, secret_hash: bytes
    ) -> tuple[ApiKey, bytes] | None: ...
    async def revoke(self, tx: Transaction, key_id: str, at: datetime) -> None: ...
    async def list_for_merchant(
        self, tx: Transaction, merchant_id: str, page: PageRequest
    ) -> Page[ApiKey]: ...


class AuditLog(Protocol):
    async def append(self, tx: Transaction, event: AuditEvent) -> None: ...
    async def list(
        self, tx: Transaction, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[AuditEvent]: ...


class RateLimiter(Protocol):
    async def hit(self, key_id: str) -> int | None:
        """Count one request; None if allowed, else the seconds until the window resets."""
        ...


class IdempotencyStore(Protocol):
    async def claim(
        self,
        principal_id: str,
        key: str,
        request_hash: bytes,
        lock_timeout_s: int,
        ttl_s: int,
    ) -> tuple[str, int | None, bytes | None, bytes]:
        """Claim a key. Returns (outcome, status, body, stored_hash) where outcome is
        'claimed' (run the request), 'completed' (replay or mismatch) or 'in_progress'."""
        ...

    async def complete(
        self,
        principal_id: str,
        key: str,
        status: int,
        body: bytes,
        tx: Transaction | None = None,
    ) -> None: ...
    async def release(self, principal_id: str, key: str) -> None: ...
    async def purge_expired(self, older_than: datetime) -> int: ...


# --- vault (issue 3) ---------------------------------------------------------------------------

# --- ledger (issue 4) --------------------------------------------------------------------------


class LedgerStore(Protocol):
    """Ledger persistence. `post` writes one linked group in one round trip, or nothing."""

    async def post(
        self,
        tx: Transaction,
        transfers: Sequence[ledger.TransferRequest],
        txn_ids: Sequence[str],
        *,
        now: datetime | None = None,
    ) -> list[ledger.PostResult]: ...
    async def expire(
        self, tx: Transaction, now: datetime, txn_ids: Sequence[str]
    ) -> list[ledger.PostResult]: ...
    async def accounts(self, tx: Transaction, owner: str) -> list[ledger.Account]: ...
    async def account(self, tx: Transaction, ref: ledger.AccountRef) -> ledger.Account | None: ...
    async def account_as_of(
        self, tx: Transaction, account_id: int, at: datetime
    ) -> ledger.Account | None: ...
    async def balance_transactions(
        self, tx: Transaction, merchant_id: str, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[ledger.BalanceTransaction]: ...


# --- payments (issue 5) ------------------------------------------------------------------------

# --- settlement (issue 6) ----------------------------------------------------------------------


class ObjectStorage(Protocol):
    """Where payout files and reports go: a local directory by default, S3 later.

    Keys are relative paths ("settlements/2026-11-23/stl_.../items.csv"). Writes are atomic (a
    reader never sees half a file) and idempotent: writing the same bytes again is a no-op.
    """

    def put(self, key: str, data: bytes) -> str:
        """Store `data` under `key`; returns the object's URI."""
        ...

    def put_file(self, key: str, local_path: str) -> str:
        """Move a finished local file (e.g. a streamed report) under `key`; returns its URI."""
        ...

    def get(self, key: str) -> bytes | None: ...
