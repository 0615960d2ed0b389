"""Vault tables: vault_deks, card_tokens, merchant_bank_accounts, vault_rotations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clearport.core.uow import Transaction
from clearport.db.database import conn_of


class PgVaultRepository:
    # -- DEKs --

    async def active_dek(self, tx: Transaction, merchant_id: str) -> Any | None:
        return await conn_of(tx).fetchrow(
            "SELECT * FROM vault_deks WHERE merchant_id = $1 AND status = 'active'", merchant_id
        )

    async def get_dek(self, tx: Transaction, merchant_id: str, version: int) -> Any | None:
        return await conn_of(tx).fetchrow(
            "SELECT * FROM vault_deks WHERE merchant_id = $1 AND version = $2",
            merchant_id,
            version,
        )

    async def insert_dek(
        self,
        tx: Transaction,
        merchant_id: str,
        version: int,
        wrapped: bytes,
        kek_id: str,
        provider: str,
    ) -> bool:
        """False when a concurrent request created this version (or an active DEK) first."""
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

    async def lock_merchant_deks(self, tx: Transaction, merchant_id: str) -> list[Any]:
        return list(
            await conn_of(tx).fetch(
                "SELECT * FROM vault_deks WHERE merchant_id = $1 ORDER BY version FOR UPDATE",
                merchant_id,
            )
        )

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
            """,
            merchant_id,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def destroy_merchant_deks(self, tx: Transaction, merchant_id: str) -> int:
        status = await conn_of(tx).execute(
            "UPDATE vault_deks SET status = 'destroyed', wrapped_key = NULL, kek_id = NULL,"
            " destroyed_at = now() WHERE merchant_id = $1 AND status <> 'destroyed'",
            merchant_id,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def deks_not_under(self, tx: Transaction, kek_id: str, limit: int) -> list[Any]:
        # SKIP LOCKED: a concurrent request creating a DEK, or a second rotation worker, never
        # blocks this batch; rows it skips are picked up by the next one.
        return list(
            await conn_of(tx).fetch(
                "SELECT * FROM vault_deks WHERE wrapped_key IS NOT NULL AND kek_id <> $1"
                " ORDER BY merchant_id, version LIMIT $2 FOR UPDATE SKIP LOCKED",
                kek_id,
                limit,
            )
        )

    async def rewrap_dek(
        self, tx: Transaction, merchant_id: str, version: int, wrapped: bytes, kek_id: str
    ) -> None:
        await conn_of(tx).execute(
            "UPDATE vault_deks SET wrapped_key = $3, kek_id = $4, rewrapped_at = now()"
            " WHERE merchant_id = $1 AND version = $2",
            merchant_id,
            version,
            wrapped,
            kek_id,
        )

    async def kek_references(self, tx: Transaction) -> dict[str, int]:
        rows = await conn_of(tx).fetch(
            "SELECT kek_id, count(*) AS n FROM vault_deks WHERE wrapped_key IS NOT NULL"
            " GROUP BY kek_id"
        )
        return {str(r["kek_id"]): int(r["n"]) for r in rows}

    # -- cards --

    async def insert_card(self, tx: Transaction, row: Mapping[str, Any]) -> None:
        await conn_of(tx).execute(
            "INSERT INTO card_tokens (id, merchant_id, brand, bin, last4, exp_month, exp_year,"
            " fingerprint, dek_version, nonce, ciphertext)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            row["id"],
            row["merchant_id"],
            row["brand"],
            row["bin"],
            row["last4"],
            row["exp_month"],
            row["exp_year"],
            row["fingerprint"],
            row["dek_version"],
            row["nonce"],
            row["ciphertext"],
        )

    async def get_card(self, tx: Transaction, token_id: str) -> Any | None:
        return await conn_of(tx).fetchrow("SELECT * FROM card_tokens WHERE id = $1", token_id)

    async def cards_to_reencrypt(
        self, tx: Transaction, merchant_id: str, target_version: int, limit: int
    ) -> list[Any]:
        return list(
            await conn_of(tx).fetch(
                "SELECT * FROM card_tokens WHERE merchant_id = $1 AND dek_version <> $2"
                " ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
                merchant_id,
                target_version,
                limit,
            )
        )

    async def update_card_ciphertext(
        self, tx: Transaction, token_id: str, version: int, nonce: bytes, ciphertext: bytes
    ) -> None:
        await conn_of(tx).execute(
            "UPDATE card_tokens SET dek_version = $2, nonce = $3, ciphertext = $4 WHERE id = $1",
            token_id,
            version,
            nonce,
            ciphertext,
        )

    # -- bank accounts --

    async def upsert_bank_account(self, tx: Transaction, row: Mapping[str, Any]) -> Any:
        return await conn_of(tx).fetchrow(
            """
            INSERT INTO merchant_bank_accounts (merchant_id, id, country, currency,
                account_holder, scheme, bic, display, dek_version, nonce, ciphertext)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (merchant_id) DO UPDATE SET
                id = EXCLUDED.id, country = EXCLUDED.country, currency = EXCLUDED.currency,
                account_holder = EXCLUDED.account_holder, scheme = EXCLUDED.scheme,
                bic = EXCLUDED.bic, display = EXCLUDED.display,
                dek_version = EXCLUDED.dek_version, nonce = EXCLUDED.nonce,
                ciphertext = EXCLUDED.ciphertext, updated_at = now()
            RETURNING *
            """,
            row["merchant_id"],
            row["id"],
            row["country"],
            row["currency"],
            row["account_holder"],
            row["scheme"],
            row["bic"],
            row["display"],
            row["dek_version"],
            row["nonce"],
            row["ciphertext"],
        )

    async def get_bank_account(self, tx: Transaction, merchant_id: str) -> Any | None:
        return await conn_of(tx).fetchrow(
            "SELECT * FROM merchant_bank_accounts WHERE merchant_id = $1", merchant_id
        )

    async def bank_account_to_reencrypt(
        self, tx: Transaction, merchant_id: str, target_version: int
    ) -> Any | None:
        return await conn_of(tx).fetchrow(
            "SELECT * FROM merchant_bank_accounts WHERE merchant_id = $1 AND dek_version <> $2"
            " FOR UPDATE",
            merchant_id,
            target_version,
        )

    async def update_bank_account_ciphertext(
        self, tx: Transaction, merchant_id: str, version: int, nonce: bytes, ciphertext: bytes
    ) -> None:
        await conn_of(tx).execute(
            "UPDATE merchant_bank_accounts SET dek_version = $2, nonce = $3, ciphertext = $4"
            " WHERE merchant_id = $1",
            merchant_id,
            version,
            nonce,
            ciphertext,
        )

    # -- rotations --

    async def open_rotation(
        self, tx: Transaction, kind: str, merchant_id: str | None
    ) -> Any | None:
        return await conn_of(tx).fetchrow(
            "SELECT * FROM vault_rotations WHERE kind = $1 AND status = 'running'"
            " AND merchant_id IS NOT DISTINCT FROM $2 FOR UPDATE",
            kind,
            merchant_id,
        )

    async def start_rotation(
        self,
        tx: Transaction,
        rotation_id: str,
        kind: str,
        merchant_id: str | None,
        target: str,
        actor: str,
    ) -> None:
        await conn_of(tx).execute(
            "INSERT INTO vault_rotations (id, kind, merchant_id, target, status, actor)"
            " VALUES ($1, $2, $3, $4, 'running', $5)",
            rotation_id,
            kind,
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

    async def running_rotations(self, tx: Transaction) -> list[Any]:
        return list(
            await conn_of(tx).fetch(
                "SELECT * FROM vault_rotations WHERE status = 'running' ORDER BY started_at"
            )
        )

    async def lock_rotation_start(self, tx: Transaction, kind: str) -> None:
        """Serialize "is a rotation running? else start one" across processes (advisory lock,
        released at commit), so two operators cannot create two new KEKs at once."""
        await conn_of(tx).execute(
            "SELECT pg_advisory_xact_lock(hashtext('clearport.vault.rotation.' || $1))", kind
        )
