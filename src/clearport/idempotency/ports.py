"""Where claimed keys and stored responses live."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from clearport.core.uow import Transaction
from clearport.idempotency.domain import RequestHash


class IdempotencyStore(Protocol):
    async def claim(
        self,
        principal_id: str,
        key: str,
        request_hash: RequestHash,
        lock_timeout_s: int,
        ttl_s: int,
    ) -> tuple[str, int | None, bytes | None, bytes, str | None]:
        """Claim a key, storing `request_hash.current`. Returns (outcome, status, body,
        stored_hash, resource_id) where outcome is 'claimed' (run the request; resource_id is
        what an abandoned earlier attempt of the same request, whichever hash format it stored,
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
    async def claim_new(
        self,
        tx: Transaction,
        principal_id: str,
        key: str,
        request_hash: bytes,
        resource_id: str | None,
    ) -> bool:
        """Claim a key no one holds, in the caller's transaction, bound to what it creates;
        False if the key has an entry of any kind (a concurrent holder's is waited for)."""
        ...

    async def store_new(
        self, principal_id: str, key: str, request_hash: bytes, status: int, body: bytes
    ) -> None:
        """Store a completed response under a key nobody claimed; nothing if one did."""
        ...

    async def release(self, principal_id: str, key: str) -> None: ...
    async def purge_expired(self, older_than: datetime) -> int: ...
