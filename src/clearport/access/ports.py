"""What authentication needs: API keys, a shared rate limiter and a record of failed attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from clearport.access.domain import ApiKey, Origin
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction


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


class RateLimiter(Protocol):
    async def hit(self, key_id: str) -> int | None:
        """Count one request; None if allowed, else the seconds until the window resets."""
        ...


class AuthFailureLog(Protocol):
    """Where failed authentications are recorded (the audit trail, which sits above access)."""

    async def auth_failed(
        self, tx: Transaction, *, origin: Origin, reason: str, resource: str
    ) -> None: ...
