"""Sealed-data tables: card_tokens, merchant_bank_accounts and vault_secrets (ciphertext under a
merchant's or the platform's DEK)."""

from __future__ import annotations

from collections.abc import Sequence

from clearport.core.errors import present
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.statements import Params
from clearport.vault.domain import BankAccountRecord, CardRecord, Sealed, SecretRecord
from clearport.vault.store.rows import (
    BANK_ACCOUNT_COLUMNS,
    CARD_COLUMNS,
    SECRET_COLUMNS,
    bank_account_record_of,
    card_record_of,
    secret_record_of,
)

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
    RETURNING {BANK_ACCOUNT_COLUMNS}
"""


class SealedRows:
    """card_tokens, merchant_bank_accounts and vault_secrets, within the caller's transaction."""

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
            f"SELECT {CARD_COLUMNS} FROM card_tokens WHERE id = $1", token_id
        )
        return None if row is None else card_record_of(row)

    async def cards_to_reencrypt(
        self, tx: Transaction, merchant_id: str, target_version: int, limit: int
    ) -> list[CardRecord]:
        rows = await conn_of(tx).fetch(
            f"SELECT {CARD_COLUMNS} FROM card_tokens WHERE merchant_id = $1 AND dek_version <> $2"
            " ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
            merchant_id,
            target_version,
            limit,
        )
        return [card_record_of(row) for row in rows]

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
        return bank_account_record_of(present(row, "an upsert returns its row"))

    async def get_bank_account(self, tx: Transaction, merchant_id: str) -> BankAccountRecord | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {BANK_ACCOUNT_COLUMNS} FROM merchant_bank_accounts WHERE merchant_id = $1",
            merchant_id,
        )
        return None if row is None else bank_account_record_of(row)

    async def get_bank_accounts(
        self, tx: Transaction, merchant_ids: Sequence[str]
    ) -> list[BankAccountRecord]:
        rows = await conn_of(tx).fetch(
            f"SELECT {BANK_ACCOUNT_COLUMNS} FROM merchant_bank_accounts"
            " WHERE merchant_id = ANY($1::text[])",
            list(merchant_ids),
        )
        return [bank_account_record_of(row) for row in rows]

    async def bank_account_to_reencrypt(
        self, tx: Transaction, merchant_id: str, target_version: int
    ) -> BankAccountRecord | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {BANK_ACCOUNT_COLUMNS} FROM merchant_bank_accounts"
            " WHERE merchant_id = $1 AND dek_version <> $2 FOR UPDATE",
            merchant_id,
            target_version,
        )
        return None if row is None else bank_account_record_of(row)

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
            f"SELECT {SECRET_COLUMNS} FROM vault_secrets WHERE id = ANY($1::text[])",
            list(secret_ids),
        )
        return [secret_record_of(row) for row in rows]

    async def delete_secrets(self, tx: Transaction, secret_ids: Sequence[str]) -> None:
        await conn_of(tx).execute(
            "DELETE FROM vault_secrets WHERE id = ANY($1::text[])", list(secret_ids)
        )

    async def secrets_to_reencrypt(
        self, tx: Transaction, owner_id: str, target_version: int, limit: int
    ) -> list[SecretRecord]:
        rows = await conn_of(tx).fetch(
            f"SELECT {SECRET_COLUMNS} FROM vault_secrets WHERE owner_id = $1"
            " AND dek_version <> $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
            owner_id,
            target_version,
            limit,
        )
        return [secret_record_of(row) for row in rows]

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
