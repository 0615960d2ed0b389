"""Vault tables: vault_deks, card_tokens, merchant_bank_accounts, vault_secrets,
vault_rotations."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from clearport.core.errors import present
from clearport.core.uow import Transaction
from clearport.db.database import Database, conn_of
from clearport.db.statements import Params
from clearport.vault.cards import StoredCard
from clearport.vault.domain import (
    BankAccountRecord,
    BankAccountView,
    CardRecord,
    DekRecord,
    DekStatus,
    RotationKind,
    RotationRecord,
    Sealed,
    SecretRecord,
)

_DEK_COLUMNS = "merchant_id, version, status, kek_id, wrapped_key"

_CARD_COLUMNS = (
    "id, merchant_id, brand, bin, last4, exp_month, exp_year, fingerprint, dek_version, nonce,"
    " ciphertext, created_at, funding, category, issuer_country"
)
_BANK_ACCOUNT_COLUMNS = (
    "merchant_id, id, country, currency, account_holder, scheme, bic, display, dek_version,"
    " nonce, ciphertext, updated_at"
)
_ROTATION_COLUMNS = "id, kind, merchant_id, target, done_count"
_SECRET_COLUMNS = "id, owner_id, purpose, dek_version, nonce, ciphertext"

_card = Params()
_INSERT_CARD = f"""
    INSERT INTO card_tokens (id, merchant_id, brand, bin, last4, exp_month, exp_year, fingerprint,
                             dek_version, nonce, ciphertext, funding, category, issuer_country)
    VALUES ({_card("id")}, {_card("merchant_id")}, {_card("brand")}, {_card("bin")},
            {_card("last4")}, {_card("exp_month")}, {_card("exp_year")}, {_card("fingerprint")},
            {_card("dek_version")}, {_card("nonce")}, {_card("ciphertext")}, {_card("funding")},
            {_card("category")}, {_card("issuer_country")})
"""

_account = Params()
_UPSERT_BANK_ACCOUNT = f"""
    INSERT INTO merchant_bank_accounts (merchant_id, id, country, currency, account_holder,
                                        scheme, bic, display, dek_version, nonce, ciphertext)
    VALUES ({_account("merchant_id")}, {_account("id")}, {_account("country")},
            {_account("currency")}, {_account("account_holder")}, {_account("scheme")},
            {_account("bic")}, {_account("display")}, {_account("dek_version")},
            {_account("nonce")}, {_account("ciphertext")})
    ON CONFLICT (merchant_id) DO UPDATE SET
        id = EXCLUDED.id, country = EXCLUDED.country, currency = EXCLUDED.currency,
        account_holder = EXCLUDED.account_holder, scheme = EXCLUDED.scheme,
        bic = EXCLUDED.bic, display = EXCLUDED.display,
        dek_version = EXCLUDED.dek_version, nonce = EXCLUDED.nonce,
        ciphertext = EXCLUDED.ciphertext, updated_at = now()
    RETURNING {_BANK_ACCOUNT_COLUMNS}
"""

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


def _dek(row: asyncpg.Record) -> DekRecord:
    return DekRecord(
        merchant_id=row["merchant_id"],
        version=int(row["version"]),
        status=DekStatus(row["status"]),
        kek_id=row["kek_id"],
        wrapped_key=row["wrapped_key"],
    )


def _sealed(row: asyncpg.Record) -> Sealed:
    return Sealed(
        dek_version=int(row["dek_version"]),
        nonce=bytes(row["nonce"]),
        ciphertext=bytes(row["ciphertext"]),
    )


def _card_record(row: asyncpg.Record) -> CardRecord:
    return CardRecord(
        card=StoredCard(
            token_id=row["id"],
            merchant_id=row["merchant_id"],
            brand=row["brand"],
            bin=row["bin"],
            last4=row["last4"],
            exp_month=int(row["exp_month"]),
            exp_year=int(row["exp_year"]),
            fingerprint=row["fingerprint"],
            created_at=row["created_at"],
            funding=row["funding"],
            category=row["category"],
            issuer_country=row["issuer_country"],
        ),
        sealed=_sealed(row),
    )


def _bank_account_record(row: asyncpg.Record) -> BankAccountRecord:
    return BankAccountRecord(
        account=BankAccountView(
            id=row["id"],
            merchant_id=row["merchant_id"],
            country=row["country"],
            currency=row["currency"],
            account_holder=row["account_holder"],
            scheme=row["scheme"],
            bic=row["bic"],
            display=dict(row["display"]),
            updated_at=row["updated_at"],
        ),
        sealed=_sealed(row),
    )


def _secret_record(row: asyncpg.Record) -> SecretRecord:
    return SecretRecord(
        id=row["id"], owner_id=row["owner_id"], purpose=row["purpose"], sealed=_sealed(row)
    )


def _rotation(row: asyncpg.Record) -> RotationRecord:
    return RotationRecord(
        id=row["id"],
        kind=RotationKind(row["kind"]),
        merchant_id=row["merchant_id"],
        target=str(row["target"]),
        done_count=int(row["done_count"]),
    )


def _affected(status: str) -> int:
    """Rows an UPDATE touched, from its command tag ("UPDATE 3")."""
    return int(status.rsplit(" ", 1)[-1])


class PgVaultRepository:
    # -- DEKs --

    async def active_dek(self, tx: Transaction, merchant_id: str) -> DekRecord | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {_DEK_COLUMNS} FROM vault_deks WHERE merchant_id = $1 AND status = 'active'",
            merchant_id,
        )
        return None if row is None else _dek(row)

    async def get_dek(self, tx: Transaction, merchant_id: str, version: int) -> DekRecord | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {_DEK_COLUMNS} FROM vault_deks WHERE merchant_id = $1 AND version = $2",
            merchant_id,
            version,
        )
        return None if row is None else _dek(row)

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
            f"SELECT {_DEK_COLUMNS} FROM vault_deks WHERE merchant_id = $1"
            " ORDER BY version FOR UPDATE",
            merchant_id,
        )
        return [_dek(row) for row in rows]

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
        return _affected(status)

    async def destroy_merchant_deks(self, tx: Transaction, merchant_id: str) -> int:
        status = await conn_of(tx).execute(
            "UPDATE vault_deks SET status = 'destroyed', wrapped_key = NULL, kek_id = NULL,"
            " destroyed_at = now() WHERE merchant_id = $1 AND status <> 'destroyed'",
            merchant_id,
        )
        return _affected(status)

    async def deks_not_under(self, tx: Transaction, kek_id: str, limit: int) -> list[DekRecord]:
        # SKIP LOCKED: a concurrent request creating a DEK, or a second rotation worker, never
        # blocks this batch; rows it skips are picked up by the next one.
        rows = await conn_of(tx).fetch(
            f"SELECT {_DEK_COLUMNS} FROM vault_deks WHERE wrapped_key IS NOT NULL AND kek_id <> $1"
            " ORDER BY merchant_id, version LIMIT $2 FOR UPDATE SKIP LOCKED",
            kek_id,
            limit,
        )
        return [_dek(row) for row in rows]

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
        return _affected(status) == 1

    async def kek_references(self, tx: Transaction) -> dict[str, int]:
        rows = await conn_of(tx).fetch(
            "SELECT kek_id, count(*) AS n FROM vault_deks WHERE wrapped_key IS NOT NULL"
            " GROUP BY kek_id"
        )
        return {str(r["kek_id"]): int(r["n"]) for r in rows}

    # -- cards --

    async def insert_card(self, tx: Transaction, record: CardRecord) -> None:
        """`record.card.created_at` is not written: the row gets the database's time."""
        card, sealed = record.card, record.sealed
        await conn_of(tx).execute(
            _INSERT_CARD,
            *_card.args(
                id=card.token_id,
                merchant_id=card.merchant_id,
                brand=card.brand,
                bin=card.bin,
                last4=card.last4,
                exp_month=card.exp_month,
                exp_year=card.exp_year,
                fingerprint=card.fingerprint,
                dek_version=sealed.dek_version,
                nonce=sealed.nonce,
                ciphertext=sealed.ciphertext,
                funding=card.funding,
                category=card.category,
                issuer_country=card.issuer_country,
            ),
        )

    async def get_card(self, tx: Transaction, token_id: str) -> CardRecord | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {_CARD_COLUMNS} FROM card_tokens WHERE id = $1", token_id
        )
        return None if row is None else _card_record(row)

    async def cards_to_reencrypt(
        self, tx: Transaction, merchant_id: str, target_version: int, limit: int
    ) -> list[CardRecord]:
        rows = await conn_of(tx).fetch(
            f"SELECT {_CARD_COLUMNS} FROM card_tokens WHERE merchant_id = $1 AND dek_version <> $2"
            " ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
            merchant_id,
            target_version,
            limit,
        )
        return [_card_record(row) for row in rows]

    async def update_card_ciphertext(self, tx: Transaction, token_id: str, sealed: Sealed) -> None:
        await conn_of(tx).execute(
            "UPDATE card_tokens SET dek_version = $2, nonce = $3, ciphertext = $4 WHERE id = $1",
            token_id,
            sealed.dek_version,
            sealed.nonce,
            sealed.ciphertext,
        )

    # -- bank accounts --

    async def upsert_bank_account(
        self, tx: Transaction, record: BankAccountRecord
    ) -> BankAccountRecord:
        account, sealed = record.account, record.sealed
        row = await conn_of(tx).fetchrow(
            _UPSERT_BANK_ACCOUNT,
            *_account.args(
                merchant_id=account.merchant_id,
                id=account.id,
                country=account.country,
                currency=account.currency,
                account_holder=account.account_holder,
                scheme=account.scheme,
                bic=account.bic,
                display=account.display,
                dek_version=sealed.dek_version,
                nonce=sealed.nonce,
                ciphertext=sealed.ciphertext,
            ),
        )
        return _bank_account_record(present(row, "an upsert returns its row"))

    async def get_bank_account(self, tx: Transaction, merchant_id: str) -> BankAccountRecord | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {_BANK_ACCOUNT_COLUMNS} FROM merchant_bank_accounts WHERE merchant_id = $1",
            merchant_id,
        )
        return None if row is None else _bank_account_record(row)

    async def bank_account_to_reencrypt(
        self, tx: Transaction, merchant_id: str, target_version: int
    ) -> BankAccountRecord | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {_BANK_ACCOUNT_COLUMNS} FROM merchant_bank_accounts"
            " WHERE merchant_id = $1 AND dek_version <> $2 FOR UPDATE",
            merchant_id,
            target_version,
        )
        return None if row is None else _bank_account_record(row)

    async def update_bank_account_ciphertext(
        self, tx: Transaction, merchant_id: str, sealed: Sealed
    ) -> None:
        await conn_of(tx).execute(
            "UPDATE merchant_bank_accounts SET dek_version = $2, nonce = $3, ciphertext = $4"
            " WHERE merchant_id = $1",
            merchant_id,
            sealed.dek_version,
            sealed.nonce,
            sealed.ciphertext,
        )

    # -- secrets --

    async def insert_secret(self, tx: Transaction, record: SecretRecord) -> None:
        sealed = record.sealed
        await conn_of(tx).execute(
            "INSERT INTO vault_secrets (id, owner_id, purpose, dek_version, nonce, ciphertext)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            record.id,
            record.owner_id,
            record.purpose,
            sealed.dek_version,
            sealed.nonce,
            sealed.ciphertext,
        )

    async def get_secrets(self, tx: Transaction, secret_ids: Sequence[str]) -> list[SecretRecord]:
        rows = await conn_of(tx).fetch(
            f"SELECT {_SECRET_COLUMNS} FROM vault_secrets WHERE id = ANY($1::text[])",
            list(secret_ids),
        )
        return [_secret_record(row) for row in rows]

    async def delete_secrets(self, tx: Transaction, secret_ids: Sequence[str]) -> None:
        await conn_of(tx).execute(
            "DELETE FROM vault_secrets WHERE id = ANY($1::text[])", list(secret_ids)
        )

    async def secrets_to_reencrypt(
        self, tx: Transaction, owner_id: str, target_version: int, limit: int
    ) -> list[SecretRecord]:
        rows = await conn_of(tx).fetch(
            f"SELECT {_SECRET_COLUMNS} FROM vault_secrets WHERE owner_id = $1"
            " AND dek_version <> $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
            owner_id,
            target_version,
            limit,
        )
        return [_secret_record(row) for row in rows]

    async def update_secret_ciphertext(
        self, tx: Transaction, secret_id: str, sealed: Sealed
    ) -> None:
        await conn_of(tx).execute(
            "UPDATE vault_secrets SET dek_version = $2, nonce = $3, ciphertext = $4 WHERE id = $1",
            secret_id,
            sealed.dek_version,
            sealed.nonce,
            sealed.ciphertext,
        )

    # -- rotations --

    async def open_rotation(
        self, tx: Transaction, kind: RotationKind, merchant_id: str | None
    ) -> RotationRecord | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {_ROTATION_COLUMNS} FROM vault_rotations WHERE kind = $1"
            " AND status = 'running' AND merchant_id IS NOT DISTINCT FROM $2 FOR UPDATE",
            str(kind),
            merchant_id,
        )
        return None if row is None else _rotation(row)

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
            f"SELECT {_ROTATION_COLUMNS} FROM vault_rotations WHERE status = 'running'"
            " ORDER BY started_at"
        )
        return [_rotation(row) for row in rows]

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
