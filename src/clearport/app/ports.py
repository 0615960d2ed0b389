"""The Protocols the use cases need. Adapters implement them; wiring.py picks which.

Repositories are stateless: every method takes the `Transaction` it runs in, so one use case can
write several repositories atomically.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from clearport.domain import ledger
from clearport.domain.audit import AuditEvent
from clearport.domain.chain import Checkpoint, SealedRow
from clearport.domain.merchants import ApiKey, Merchant
from clearport.domain.pagination import Page, PageRequest
from clearport.domain.payments import (
    Attempt,
    ConnectorCard,
    ConnectorResult,
    Event,
    Payment,
    Refund,
    TxlogEntry,
)

# --- foundation -------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime: ...


class Transaction(Protocol):
    """An open database transaction; opaque to the use cases."""


class UnitOfWork(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    def autocommit(self) -> AbstractAsyncContextManager[Transaction]:
        """Statements commit one by one: for a single read or a single-statement write."""
        ...


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
    ) -> tuple[str, int | None, bytes | None, bytes, str | None]:
        """Claim a key. Returns (outcome, status, body, stored_hash, resource_id) where
        outcome is 'claimed' (run the request; resource_id is what an abandoned earlier attempt
        created, if anything), 'completed' (replay or mismatch) or 'in_progress'."""
        ...

    async def bind_resource(
        self, tx: Transaction, principal_id: str, key: str, resource_id: str
    ) -> None: ...

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


class KeyProvider(Protocol):
    """Wraps and unwraps data-encryption keys under a key-encryption key (KEK) it never reveals.

    `context` is bound to the wrapped key (KMS EncryptionContext, AES-GCM associated data for
    the local keyring): unwrapping with another context fails. KEK ids are opaque strings that
    the vault stores beside each wrapped DEK.
    """

    name: str

    async def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes, str]:
        """A new 256-bit key: (plaintext, wrapped, kek_id)."""
        ...

    async def wrap(self, plaintext: bytes, context: Mapping[str, str]) -> tuple[bytes, str]:
        """(wrapped, kek_id) under the current KEK."""
        ...

    async def unwrap(self, wrapped: bytes, kek_id: str, context: Mapping[str, str]) -> bytes:
        """The plaintext DEK; raises KeyMaterialUnavailable when it cannot."""
        ...

    async def current_kek_id(self) -> str: ...

    async def rotate_kek(self) -> str:
        """Make a new KEK current (or pick up the one configured) and return its id."""
        ...

    async def retire_kek(self, kek_id: str) -> bool:
        """Destroy / stop using a KEK no DEK refers to. False when the provider cannot."""
        ...

    async def fingerprint_key(self) -> bytes:
        """The HMAC key for card fingerprints; never stored in the database."""
        ...

    async def kek_ids(self) -> list[str]:
        """KEKs whose key material this provider still holds (candidates for retirement)."""
        ...


class RecordCipher(Protocol):
    """Authenticated encryption of one record under one DEK (AES-256-GCM)."""

    def encrypt(self, key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """(nonce, ciphertext) with a fresh random nonce."""
        ...

    def decrypt(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """The plaintext; raises ValueError when authentication fails."""
        ...


class DekCache(Protocol):
    """Unwrapped DEKs in memory, bounded in size and age."""

    def get(self, merchant_id: str, version: int, wrapped: bytes) -> bytes | None:
        """The key, only if it was cached from this very wrapped blob: a DEK row from a rolled
        back transaction, or re-wrapped since, can never serve a stale key."""
        ...

    def put(self, merchant_id: str, version: int, wrapped: bytes, key: bytes) -> None: ...
    def evict_merchant(self, merchant_id: str) -> None: ...
    def clear(self) -> None: ...


class VaultRepository(Protocol):
    """Tables: vault_deks, card_tokens, merchant_bank_accounts, vault_rotations (see 0002)."""

    async def active_dek(self, tx: Transaction, merchant_id: str) -> Any | None: ...
    async def get_dek(self, tx: Transaction, merchant_id: str, version: int) -> Any | None: ...
    async def insert_dek(
        self,
        tx: Transaction,
        merchant_id: str,
        version: int,
        wrapped: bytes,
        kek_id: str,
        provider: str,
    ) -> bool: ...
    async def lock_merchant_deks(self, tx: Transaction, merchant_id: str) -> list[Any]: ...
    async def retire_deks_except(self, tx: Transaction, merchant_id: str, version: int) -> None: ...
    async def destroy_unreferenced_retired_deks(self, tx: Transaction, merchant_id: str) -> int: ...
    async def destroy_merchant_deks(self, tx: Transaction, merchant_id: str) -> int: ...
    async def deks_not_under(self, tx: Transaction, kek_id: str, limit: int) -> list[Any]: ...
    async def rewrap_dek(
        self, tx: Transaction, merchant_id: str, version: int, wrapped: bytes, kek_id: str
    ) -> None: ...
    async def kek_references(self, tx: Transaction) -> dict[str, int]: ...
    async def insert_card(self, tx: Transaction, row: Mapping[str, Any]) -> None: ...
    async def get_card(self, tx: Transaction, token_id: str) -> Any | None: ...
    async def cards_to_reencrypt(
        self, tx: Transaction, merchant_id: str, target_version: int, limit: int
    ) -> list[Any]: ...
    async def update_card_ciphertext(
        self, tx: Transaction, token_id: str, version: int, nonce: bytes, ciphertext: bytes
    ) -> None: ...
    async def upsert_bank_account(self, tx: Transaction, row: Mapping[str, Any]) -> Any: ...
    async def get_bank_account(self, tx: Transaction, merchant_id: str) -> Any | None: ...
    async def bank_account_to_reencrypt(
        self, tx: Transaction, merchant_id: str, target_version: int
    ) -> Any | None: ...
    async def update_bank_account_ciphertext(
        self, tx: Transaction, merchant_id: str, version: int, nonce: bytes, ciphertext: bytes
    ) -> None: ...
    async def open_rotation(
        self, tx: Transaction, kind: str, merchant_id: str | None
    ) -> Any | None: ...
    async def start_rotation(
        self,
        tx: Transaction,
        rotation_id: str,
        kind: str,
        merchant_id: str | None,
        target: str,
        actor: str,
    ) -> None: ...
    async def progress_rotation(self, tx: Transaction, rotation_id: str, done: int) -> None: ...
    async def finish_rotation(self, tx: Transaction, rotation_id: str) -> None: ...
    async def running_rotations(self, tx: Transaction) -> list[Any]: ...
    async def lock_rotation_start(self, tx: Transaction, kind: str) -> None: ...


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
    async def merchant_exists(self, tx: Transaction, merchant_id: str) -> bool: ...


# --- payments (issue 5) ------------------------------------------------------------------------


class Connector(Protocol):
    """An acquirer or processor. Every call carries our reference (the attempt id) so `status`
    can find out afterwards what happened to a call whose answer never arrived. Callers bound
    every call with a timeout; a timeout means "unknown", never "declined"."""

    name: str

    async def authorize(
        self,
        reference: str,
        amount_minor: int,
        currency: str,
        card: ConnectorCard,
        *,
        capture: bool,
    ) -> ConnectorResult: ...
    async def capture(
        self, reference: str, authorization: str, amount_minor: int, currency: str
    ) -> ConnectorResult: ...
    async def void(self, reference: str, authorization: str) -> ConnectorResult: ...
    async def refund(
        self, reference: str, capture_reference: str, amount_minor: int, currency: str
    ) -> ConnectorResult: ...
    async def status(self, reference: str) -> ConnectorResult: ...


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


class ChainStore(Protocol):
    """The rows of an append-only table and the hash chain sealing them."""

    async def try_lock(self, tx: Transaction, chain: str) -> bool: ...
    async def head(self, tx: Transaction, chain: str) -> tuple[int, bytes]: ...
    async def unsealed(
        self, tx: Transaction, chain: str, lookback_s: int, limit: int
    ) -> list[tuple[int, str]]:
        """(source_seq, canonical row) of rows not yet sealed, in source order."""
        ...

    async def insert_seals(
        self, tx: Transaction, chain: str, seals: Sequence[tuple[int, int, bytes]]
    ) -> None: ...
    def walk(self, chain: str) -> AsyncIterator[SealedRow]: ...


class CheckpointStore(Protocol):
    """Signed chain heads kept outside the database."""

    def append(self, checkpoint: Checkpoint) -> None: ...
    def read(self, chain: str) -> list[Checkpoint]: ...


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
