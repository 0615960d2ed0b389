"""An in-memory `IdempotencyStore` for the fast test tier, with the real one's claim rules."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from clearport.core.clock import Clock
from clearport.core.uow import Transaction
from clearport.idempotency.domain import RequestHash, StoredResponse


@dataclass(slots=True)
class FakeEntry:
    request_hash: bytes
    created_at: datetime
    locked_at: datetime
    state: str = "in_progress"
    response_status: int | None = None
    response_body: bytes | None = None
    resource_id: str | None = None


class FakeIdempotencyStore:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.entries: dict[tuple[str, str], FakeEntry] = {}

    def snapshot(self) -> object:
        return copy.deepcopy(self.entries)

    def restore(self, snapshot: object) -> None:
        self.entries = copy.deepcopy(cast(dict[tuple[str, str], FakeEntry], snapshot))

    async def claim(
        self,
        principal_id: str,
        key: str,
        request_hash: RequestHash,
        lock_timeout_s: int,
        ttl_s: int,
    ) -> tuple[str, int | None, bytes | None, bytes, str | None]:
        now = self._clock.now()
        entry = self.entries.get((principal_id, key))
        if entry is None or entry.created_at < now - timedelta(seconds=ttl_s):
            self.entries[(principal_id, key)] = FakeEntry(request_hash.current, now, now)
            return "claimed", None, None, request_hash.current, None
        abandoned = entry.state == "in_progress" and entry.locked_at < now - timedelta(
            seconds=lock_timeout_s
        )
        if abandoned and request_hash.matches(entry.request_hash):
            entry.request_hash = request_hash.current
            entry.created_at = entry.locked_at = now
            return "claimed", None, None, request_hash.current, entry.resource_id
        return (
            entry.state,
            entry.response_status,
            entry.response_body,
            entry.request_hash,
            None,
        )

    async def bind_resource(
        self, tx: Transaction, principal_id: str, key: str, resource_id: str
    ) -> None:
        entry = self.entries.get((principal_id, key))
        if entry is not None:
            entry.resource_id = resource_id

    async def complete(
        self,
        principal_id: str,
        key: str,
        status: int,
        body: bytes,
        tx: Transaction | None = None,
    ) -> None:
        self.store(StoredResponse(principal_id, key, status, body))

    def store(self, response: StoredResponse) -> None:
        """Complete the key, as `complete` and the payment store's combined statement do."""
        entry = self.entries.get((response.scope, response.key))
        if entry is not None:
            entry.state = "completed"
            entry.response_status = response.status
            entry.response_body = response.body

    async def claim_new(
        self,
        tx: Transaction,
        principal_id: str,
        key: str,
        request_hash: bytes,
        resource_id: str | None,
    ) -> bool:
        if (principal_id, key) in self.entries:
            return False
        now = self._clock.now()
        self.entries[(principal_id, key)] = FakeEntry(
            request_hash, now, now, resource_id=resource_id
        )
        return True

    async def store_new(
        self, principal_id: str, key: str, request_hash: bytes, status: int, body: bytes
    ) -> None:
        if (principal_id, key) not in self.entries:
            now = self._clock.now()
            self.entries[(principal_id, key)] = FakeEntry(
                request_hash, now, now, "completed", status, body
            )

    async def release(self, principal_id: str, key: str) -> None:
        # As PostgreSQL's: a key bound to what its request created stays for the retry.
        entry = self.entries.get((principal_id, key))
        if entry is not None and entry.state == "in_progress" and entry.resource_id is None:
            del self.entries[(principal_id, key)]

    async def purge_expired(self, older_than: datetime) -> int:
        old = [k for k, entry in self.entries.items() if entry.created_at < older_than]
        for k in old:
            del self.entries[k]
        return len(old)
