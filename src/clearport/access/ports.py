"""What authentication needs: API keys, a shared rate limiter, the failed-authentication count
that locks an address out, and a record of failed attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from clearport.access.domain import ApiKey, Origin
from clearport.access.lockout import FailureCount, LockoutPolicy
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction


@dataclass(frozen=True, slots=True)
class KeyLookup:
    """What authentication reads in its one query: the key with the presented hash (and the
    stored hash, for the constant-time comparison), and whether the caller is locked out."""

    key: ApiKey | None
    secret_hash: bytes | None
    subject_locked: bool
    # Until when the subject stays locked out (None: not locked), so a cache knows how long
    # the answer holds.
    locked_until: datetime | None = None


class ApiKeyRepository(Protocol):
    async def insert(
        self, tx: Transaction, key: ApiKey, secret_hash: bytes, created_by: str
    ) -> None: ...
    async def get(self, tx: Transaction, key_id: str) -> ApiKey | None: ...
    async def find_by_hash(
        self, tx: Transaction, secret_hash: bytes, *, lockout_subject: str, at: datetime
    ) -> KeyLookup:
        """The key and, in the same round trip, whether `lockout_subject` is locked out `at`."""
        ...

    async def get_by_hash(self, tx: Transaction, secret_hash: bytes) -> ApiKey | None:
        """The key with this hash, for a check that is not a login (nothing is counted)."""
        ...

    async def revoke(self, tx: Transaction, key_id: str, at: datetime) -> None: ...
    async def list_for_merchant(
        self, tx: Transaction, merchant_id: str, page: PageRequest
    ) -> Page[ApiKey]: ...


class RateLimiter(Protocol):
    async def hit(self, key_id: str) -> int | None:
        """Count one request; None if allowed, else the seconds until the window resets."""
        ...

    async def close(self) -> None:
        """Stop what runs in the background (the exchange with other processes)."""
        ...


class AuthFailureCounter(Protocol):
    """Failed authentications per subject, shared by every API process."""

    async def count_failure(
        self, tx: Transaction, subject: str, at: datetime, policy: LockoutPolicy
    ) -> FailureCount:
        """Count one failure atomically (concurrent failures are never lost) unless `subject`
        is locked out; lock it out if this failure reaches the policy's limit."""
        ...


class AuthFailureLog(Protocol):
    """Where failed authentications and lockouts are recorded (the audit trail, which sits
    above access)."""

    async def auth_failed(
        self, tx: Transaction, *, origin: Origin, reason: str, resource: str, locked_out: bool
    ) -> None: ...

    async def auth_locked_out(
        self,
        tx: Transaction,
        *,
        origin: Origin,
        subject: str,
        failures: int,
        policy: LockoutPolicy,
        locked_until: datetime,
    ) -> None: ...
