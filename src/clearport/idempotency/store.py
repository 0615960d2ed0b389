"""Idempotency keys in PostgreSQL: claim, complete, release, purge; and the step that stores a
response inside another store's statement (the payment store finishes an authorization and
stores its idempotent response in one statement, docs/decisions/0300)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clearport.core.uow import Transaction
from clearport.db.database import Database, conn_of
from clearport.db.statements import Params
from clearport.idempotency.domain import RequestHash, StoredResponse


def _complete(p: Params, name: str) -> str:
    return (
        "UPDATE idempotency_keys SET state = 'completed', "
        f"response_status = {p(f'{name}.status', 'integer')}, "
        f"response_body = {p(f'{name}.body', 'bytea')}, completed_at = now() "
        f"WHERE principal_id = {p(f'{name}.scope', 'text')} AND key = {p(f'{name}.key', 'text')}"
    )


def complete_step(p: Params, name: str, *, if_any_row_in: str) -> str:
    """Store the response named `name` if the enclosing statement's CTE `if_any_row_in` produced
    a row (the change it answers for happened). Values: `response_values`."""
    return f"{_complete(p, name)} AND EXISTS (SELECT 1 FROM {if_any_row_in})"


def response_values(name: str, response: StoredResponse) -> dict[str, Any]:
    return {
        f"{name}.status": response.status,
        f"{name}.body": response.body,
        f"{name}.scope": response.scope,
        f"{name}.key": response.key,
    }


_COMPLETE_PARAMS = Params()
_COMPLETE = _complete(_COMPLETE_PARAMS, "response")

# A claim succeeds when the key is new, when its entry expired (query-time TTL cut-off), or when
# an earlier attempt with the same request was abandoned (in progress past the lock timeout). The
# same request is either hash format ($6: the legacy one); a taken-over claim stores the current.
_CLAIM = """
INSERT INTO idempotency_keys (principal_id, key, request_hash, state)
VALUES ($1, $2, $3, 'in_progress')
ON CONFLICT (principal_id, key) DO UPDATE
SET request_hash = EXCLUDED.request_hash, state = 'in_progress', created_at = now(),
    locked_at = now(), response_status = NULL, response_body = NULL, completed_at = NULL,
    -- An expired entry starts afresh; an abandoned attempt of the same request keeps what it
    -- created, so the retry recovers it. (SET reads the old row's created_at.)
    resource_id = CASE WHEN idempotency_keys.created_at < now() - make_interval(secs => $5)
                       THEN NULL ELSE idempotency_keys.resource_id END
WHERE idempotency_keys.created_at < now() - make_interval(secs => $5)
   OR (idempotency_keys.state = 'in_progress'
       AND idempotency_keys.locked_at < now() - make_interval(secs => $4)
       AND idempotency_keys.request_hash IN (EXCLUDED.request_hash, $6))
RETURNING resource_id
"""


class PgIdempotencyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self,
        principal_id: str,
        key: str,
        request_hash: RequestHash,
        lock_timeout_s: int,
        ttl_s: int,
    ) -> tuple[str, int | None, bytes | None, bytes, str | None]:
        async with self._db.pool.acquire() as conn:
            claimed = await conn.fetchrow(
                _CLAIM,
                principal_id,
                key,
                request_hash.current,
                float(lock_timeout_s),
                float(ttl_s),
                request_hash.legacy,
            )
            if claimed is not None:
                return "claimed", None, None, request_hash.current, claimed["resource_id"]
            row = await conn.fetchrow(
                "SELECT state, response_status, response_body, request_hash "
                "FROM idempotency_keys WHERE principal_id = $1 AND key = $2",
                principal_id,
                key,
            )
        if row is None:  # released between the two statements: the caller may retry
            return "in_progress", None, None, request_hash.current, None
        body = None if row["response_body"] is None else bytes(row["response_body"])
        return row["state"], row["response_status"], body, bytes(row["request_hash"]), None

    async def bind_resource(
        self, tx: Transaction, principal_id: str, key: str, resource_id: str
    ) -> None:
        await conn_of(tx).execute(
            "UPDATE idempotency_keys SET resource_id = $3 WHERE principal_id = $1 AND key = $2",
            principal_id,
            key,
            resource_id,
        )

    async def complete(
        self,
        principal_id: str,
        key: str,
        status: int,
        body: bytes,
        tx: Transaction | None = None,
    ) -> None:
        args = _COMPLETE_PARAMS.args(
            response_values("response", StoredResponse(principal_id, key, status, body))
        )
        if tx is not None:
            await conn_of(tx).execute(_COMPLETE, *args)
            return
        async with self._db.pool.acquire() as conn:
            await conn.execute(_COMPLETE, *args)

    async def claim_new(
        self,
        tx: Transaction,
        principal_id: str,
        key: str,
        request_hash: bytes,
        resource_id: str | None,
    ) -> bool:
        # DO NOTHING waits for a concurrent claim of the same key to commit or roll back.
        return bool(
            await conn_of(tx).fetchval(
                "INSERT INTO idempotency_keys (principal_id, key, request_hash, state, "
                "resource_id) VALUES ($1, $2, $3, 'in_progress', $4) "
                "ON CONFLICT (principal_id, key) DO NOTHING RETURNING true",
                principal_id,
                key,
                request_hash,
                resource_id,
            )
        )

    async def store_new(
        self, principal_id: str, key: str, request_hash: bytes, status: int, body: bytes
    ) -> None:
        async with self._db.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO idempotency_keys (principal_id, key, request_hash, state, "
                "response_status, response_body, completed_at) "
                "VALUES ($1, $2, $3, 'completed', $4, $5, now()) "
                "ON CONFLICT (principal_id, key) DO NOTHING",
                principal_id,
                key,
                request_hash,
                status,
                body,
            )

    async def release(self, principal_id: str, key: str) -> None:
        # A key bound to what its request created stays (in progress, recovered by the retry
        # after the lock timeout): forgetting it would let the retry create a second payment
        # and charge the card twice (found by the money simulation, seed 5).
        async with self._db.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM idempotency_keys WHERE principal_id = $1 AND key = $2 "
                "AND state = 'in_progress' AND resource_id IS NULL",
                principal_id,
                key,
            )

    async def purge_expired(self, older_than: datetime) -> int:
        async with self._db.pool.acquire() as conn:
            result = await conn.execute(
                "DELETE FROM idempotency_keys WHERE created_at < $1", older_than
            )
        return int(result.split()[-1])
