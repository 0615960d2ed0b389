"""What console sign-in needs: enrolments, sessions, and the vault's sealed secrets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from clearport.core.uow import Transaction
from clearport.sessions.domain import ConsoleSession, Enrolment, SessionStage


class EnrolmentStore(Protocol):
    async def get(self, tx: Transaction, key_id: str) -> Enrolment | None: ...
    async def put_pending(
        self, tx: Transaction, key_id: str, secret_id: str, at: datetime
    ) -> str | None:
        """Store a pending enrolment (replacing a pending one); the replaced secret's id.
        Never replaces a confirmed enrolment."""
        ...

    async def accept_step(self, tx: Transaction, key_id: str, step: int, at: datetime) -> bool:
        """Record `step` as used (and the enrolment as confirmed) unless a step at or after it
        was already used: False then (a replayed code)."""
        ...


class SessionStore(Protocol):
    async def insert(
        self,
        tx: Transaction,
        *,
        token_hash: bytes,
        key_id: str,
        stage: SessionStage,
        csrf_token: str,
        at: datetime,
        expires_at: datetime,
    ) -> None: ...

    async def touch(
        self, tx: Transaction, token_hash: bytes, *, at: datetime, idle_since: datetime
    ) -> ConsoleSession | None:
        """The session, its last-seen time moved to `at`, if it is alive: seen after
        `idle_since`, not past its lifetime, its key neither revoked nor expired."""
        ...

    async def delete(self, tx: Transaction, token_hash: bytes) -> str | None:
        """End the session; the key id it belonged to."""
        ...

    async def key_locked(self, tx: Transaction, subject: str, at: datetime) -> bool:
        """Whether `subject` (an operator key's lockout subject) is locked out `at`."""
        ...

    async def purge(self, tx: Transaction, before: datetime, limit: int) -> int:
        """Forget at most `limit` sessions that ended (idle or past lifetime) before `before`."""
        ...


class SecretVault(Protocol):
    """The vault's sealed secrets (implemented by `vault.service.VaultService`)."""

    async def seal_secret(
        self, tx: Transaction, owner_id: str, purpose: str, plaintext: bytes
    ) -> str: ...

    async def open_secrets(
        self, tx: Transaction, owner_id: str, secret_ids: Sequence[str]
    ) -> dict[str, bytes]: ...

    async def destroy_secrets(self, tx: Transaction, secret_ids: Sequence[str]) -> None: ...
