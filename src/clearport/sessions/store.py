"""Console sessions and TOTP enrolments in PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.sessions.domain import ConsoleSession, Enrolment, EnrolmentStatus, SessionStage

_GET_ENROLMENT = "SELECT key_id, secret_id, status, last_step FROM operator_totp WHERE key_id = $1"

# A pending enrolment replaces a pending one (the secret was shown and never confirmed); a
# confirmed enrolment is never replaced here. The previous secret's id comes back to be destroyed.
_PUT_PENDING = """
WITH previous AS (
    SELECT secret_id FROM operator_totp WHERE key_id = $1 AND status = 'pending' FOR UPDATE
), stored AS (
    INSERT INTO operator_totp AS t (key_id, secret_id, status, created_at)
    VALUES ($1, $2, 'pending', $3)
    ON CONFLICT (key_id) DO UPDATE SET secret_id = EXCLUDED.secret_id,
        created_at = EXCLUDED.created_at
    WHERE t.status = 'pending'
    RETURNING 1
)
SELECT (SELECT secret_id FROM previous) AS replaced
"""

# A code's step is used once: the update happens only for a later step than the last one.
_ACCEPT_STEP = """
UPDATE operator_totp SET last_step = $2, status = 'enrolled',
    enrolled_at = coalesce(enrolled_at, $3)
WHERE key_id = $1 AND last_step < $2
RETURNING key_id
"""

_INSERT_SESSION = """
INSERT INTO operator_sessions
    (token_hash, key_id, stage, csrf_token, created_at, last_seen_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $5, $6)
"""

# Alive: seen within the idle timeout, inside its lifetime, its key still usable. One statement
# checks and restarts the idle clock.
_TOUCH = """
UPDATE operator_sessions s SET last_seen_at = $2
FROM api_keys k
WHERE s.token_hash = $1 AND k.id = s.key_id
  AND s.last_seen_at > $3 AND s.expires_at > $2
  AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $2)
RETURNING s.key_id, k.role, s.stage, s.csrf_token
"""

_DELETE = "DELETE FROM operator_sessions WHERE token_hash = $1 RETURNING key_id"

_KEY_LOCKED = "SELECT EXISTS (SELECT 1 FROM auth_failures WHERE subject = $1 AND locked_until > $2)"

_PURGE = """
DELETE FROM operator_sessions WHERE token_hash IN (
    SELECT token_hash FROM operator_sessions
    WHERE last_seen_at <= $1 OR expires_at <= $1
    LIMIT $2 FOR UPDATE SKIP LOCKED)
"""


class PgEnrolmentStore:
    async def get(self, tx: Transaction, key_id: str) -> Enrolment | None:
        row = await conn_of(tx).fetchrow(_GET_ENROLMENT, key_id)
        if row is None:
            return None
        return Enrolment(
            row["key_id"], row["secret_id"], EnrolmentStatus(row["status"]), row["last_step"]
        )

    async def put_pending(
        self, tx: Transaction, key_id: str, secret_id: str, at: datetime
    ) -> str | None:
        replaced: str | None = await conn_of(tx).fetchval(_PUT_PENDING, key_id, secret_id, at)
        return replaced

    async def accept_step(self, tx: Transaction, key_id: str, step: int, at: datetime) -> bool:
        return await conn_of(tx).fetchval(_ACCEPT_STEP, key_id, step, at) is not None


class PgSessionStore:
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
    ) -> None:
        await conn_of(tx).execute(
            _INSERT_SESSION, token_hash, key_id, stage.value, csrf_token, at, expires_at
        )

    async def touch(
        self, tx: Transaction, token_hash: bytes, *, at: datetime, idle_since: datetime
    ) -> ConsoleSession | None:
        row = await conn_of(tx).fetchrow(_TOUCH, token_hash, at, idle_since)
        if row is None:
            return None
        return ConsoleSession(
            row["key_id"], row["role"], SessionStage(row["stage"]), row["csrf_token"]
        )

    async def delete(self, tx: Transaction, token_hash: bytes) -> str | None:
        key_id: str | None = await conn_of(tx).fetchval(_DELETE, token_hash)
        return key_id

    async def key_locked(self, tx: Transaction, subject: str, at: datetime) -> bool:
        return bool(await conn_of(tx).fetchval(_KEY_LOCKED, subject, at))

    async def purge(self, tx: Transaction, before: datetime, limit: int) -> int:
        status = await conn_of(tx).execute(_PURGE, before, limit)
        return int(status.split()[-1])
