"""Key tables: vault_deks (a merchant's data keys, wrapped by a KEK), vault_rotations and
vault_wrapped_keys."""

from __future__ import annotations

from clearport.core.errors import present
from clearport.core.uow import Transaction
from clearport.db.database import Database, conn_of
from clearport.db.statements import Params
from clearport.vault.domain import DekRecord, RotationKind, RotationRecord
from clearport.vault.store.rows import (
    DEK_COLUMNS,
    ROTATION_COLUMNS,
    dek_of,
    rotation_of,
    rows_affected,
)

# Compare-and-set: the key was unwrapped and re-wrapped outside any transaction, so the row is
# written only if it still holds the blob that was unwrapped. SKIP LOCKED: a row someone holds
# (a shred, a DEK rotation starting) is left for a later batch; NO KEY UPDATE: card inserts
# checking their foreign key to this DEK are never blocked.
_rewrap = Params()
_REWRAP_DEK = f"""
    UPDATE vault_deks SET wrapped_key = {_rewrap("wrapped")}, kek_id = {_rewrap("kek_id")},
           rewrapped_at = now()
     WHERE (merchant_id, version) IN (
           SELECT merchant_id, version FROM vault_deks
            WHERE merchant_id = {_rewrap("merchant_id")} AND version = {_rewrap("version")}
              AND wrapped_key = {_rewrap("was")}
              FOR NO KEY UPDATE SKIP LOCKED)
"""


class DekRows:
    """vault_deks and vault_rotations, within the caller's transaction."""

    # -- DEKs --

    async def active_dek(self, tx: Transaction, merchant_id: str) -> DekRecord | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {DEK_COLUMNS} FROM vault_deks WHERE merchant_id = $1 AND status = 'active'",
            merchant_id,
        )
        return None if row is None else dek_of(row)

    async def get_dek(self, tx: Transaction, merchant_id: str, version: int) -> DekRecord | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {DEK_COLUMNS} FROM vault_deks WHERE merchant_id = $1 AND version = $2",
            merchant_id,
            version,
        )
        return None if row is None else dek_of(row)

    async def insert_dek(
        self,
        tx: Transaction,
        merchant_id: str,
        version: int,
        wrapped: bytes,
        kek_id: str,
        provider: str,
    ) -> bool:
        status = await conn_of(tx).execute(
            "INSERT INTO vault_deks (merchant_id, version, status, provider, kek_id, wrapped_key)"
            " VALUES ($1, $2, 'active', $3, $4, $5) ON CONFLICT DO NOTHING",
            merchant_id,
            version,
            provider,
            kek_id,
            wrapped,
        )
        return bool(status == "INSERT 0 1")

    async def lock_merchant_deks(self, tx: Transaction, merchant_id: str) -> list[DekRecord]:
        rows = await conn_of(tx).fetch(
            f"SELECT {DEK_COLUMNS} FROM vault_deks WHERE merchant_id = $1"
            " ORDER BY version FOR UPDATE",
            merchant_id,
        )
        return [dek_of(row) for row in rows]

    async def retire_deks_except(self, tx: Transaction, merchant_id: str, version: int) -> None:
        await conn_of(tx).execute(
            "UPDATE vault_deks SET status = 'retired' WHERE merchant_id = $1 AND version <> $2"
            " AND status = 'active'",
            merchant_id,
            version,
        )

    async def destroy_unreferenced_retired_deks(self, tx: Transaction, merchant_id: str) -> int:
        status = await conn_of(tx).execute(
            """
            UPDATE vault_deks d SET status = 'destroyed', wrapped_key = NULL, kek_id = NULL,
                   destroyed_at = now()
             WHERE d.merchant_id = $1 AND d.status = 'retired'
               AND NOT EXISTS (SELECT 1 FROM card_tokens c
                                WHERE c.merchant_id = d.merchant_id
                                  AND c.dek_version = d.version)
               AND NOT EXISTS (SELECT 1 FROM merchant_bank_accounts b
                                WHERE b.merchant_id = d.merchant_id
                                  AND b.dek_version = d.version)
               AND NOT EXISTS (SELECT 1 FROM vault_secrets s
                                WHERE s.owner_id = d.merchant_id
                                  AND s.dek_version = d.version)
            """,
            merchant_id,
        )
        return rows_affected(status)

    async def destroy_merchant_deks(self, tx: Transaction, merchant_id: str) -> int:
        status = await conn_of(tx).execute(
            "UPDATE vault_deks SET status = 'destroyed', wrapped_key = NULL, kek_id = NULL,"
            " destroyed_at = now() WHERE merchant_id = $1 AND status <> 'destroyed'",
            merchant_id,
        )
        return rows_affected(status)

    async def deks_not_under(self, tx: Transaction, kek_id: str, limit: int) -> list[DekRecord]:
        # SKIP LOCKED: a concurrent request creating a DEK, or a second rotation worker, never
        # blocks this batch; rows it skips are picked up by the next one.
        rows = await conn_of(tx).fetch(
            f"SELECT {DEK_COLUMNS} FROM vault_deks WHERE wrapped_key IS NOT NULL AND kek_id <> $1"
            " ORDER BY merchant_id, version LIMIT $2 FOR UPDATE SKIP LOCKED",
            kek_id,
            limit,
        )
        return [dek_of(row) for row in rows]

    async def rewrap_dek(
        self, tx: Transaction, dek: DekRecord, wrapped: bytes, kek_id: str
    ) -> bool:
        status = await conn_of(tx).execute(
            _REWRAP_DEK,
            *_rewrap.args(
                wrapped=wrapped,
                kek_id=kek_id,
                merchant_id=dek.merchant_id,
                version=dek.version,
                was=dek.wrapped_key,
            ),
        )
        return rows_affected(status) == 1

    async def kek_references(self, tx: Transaction) -> dict[str, int]:
        rows = await conn_of(tx).fetch(
            "SELECT kek_id, count(*) AS n FROM vault_deks WHERE wrapped_key IS NOT NULL"
            " GROUP BY kek_id"
        )
        return {str(r["kek_id"]): int(r["n"]) for r in rows}

    # -- rotations --

    async def open_rotation(
        self, tx: Transaction, kind: RotationKind, merchant_id: str | None
    ) -> RotationRecord | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {ROTATION_COLUMNS} FROM vault_rotations WHERE kind = $1"
            " AND status = 'running' AND merchant_id IS NOT DISTINCT FROM $2 FOR UPDATE",
            str(kind),
            merchant_id,
        )
        return None if row is None else rotation_of(row)

    async def start_rotation(
        self,
        tx: Transaction,
        rotation_id: str,
        kind: RotationKind,
        merchant_id: str | None,
        target: str,
        actor: str,
    ) -> None:
        await conn_of(tx).execute(
            "INSERT INTO vault_rotations (id, kind, merchant_id, target, status, actor)"
            " VALUES ($1, $2, $3, $4, 'running', $5)",
            rotation_id,
            str(kind),
            merchant_id,
            target,
            actor,
        )

    async def progress_rotation(self, tx: Transaction, rotation_id: str, done: int) -> None:
        await conn_of(tx).execute(
            "UPDATE vault_rotations SET done_count = done_count + $2 WHERE id = $1",
            rotation_id,
            done,
        )

    async def finish_rotation(self, tx: Transaction, rotation_id: str) -> None:
        await conn_of(tx).execute(
            "UPDATE vault_rotations SET status = 'done', finished_at = now() WHERE id = $1",
            rotation_id,
        )

    async def running_rotations(self, tx: Transaction) -> list[RotationRecord]:
        rows = await conn_of(tx).fetch(
            f"SELECT {ROTATION_COLUMNS} FROM vault_rotations WHERE status = 'running'"
            " ORDER BY started_at"
        )
        return [rotation_of(row) for row in rows]

    async def lock_rotation_start(self, tx: Transaction, kind: RotationKind) -> None:
        """Serialize "is a rotation running? else start one" across processes (advisory lock,
        released at commit), so two operators cannot create two new KEKs at once."""
        await conn_of(tx).execute(
            "SELECT pg_advisory_xact_lock(hashtext('clearport.vault.rotation.' || $1))", str(kind)
        )


class PgWrappedKeys:
    """`vault_wrapped_keys`: one row per name, written once."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, name: str) -> tuple[bytes, str] | None:
        async with self._db.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT wrapped, kek_id FROM vault_wrapped_keys WHERE name = $1", name
            )
        return None if row is None else (bytes(row["wrapped"]), str(row["kek_id"]))

    async def put_if_absent(
        self, name: str, provider: str, kek_id: str, wrapped: bytes
    ) -> tuple[bytes, str]:
        async with self._db.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO vault_wrapped_keys (name, provider, kek_id, wrapped) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                name,
                provider,
                kek_id,
                wrapped,
            )
        return present(await self.get(name), "a wrapped key was just stored")
