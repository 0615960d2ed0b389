"""Column lists and row-to-record conversions shared by the vault's table classes."""

from __future__ import annotations

import asyncpg

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

DEK_COLUMNS = "merchant_id, version, status, kek_id, wrapped_key"

CARD_COLUMNS = (
    "id, merchant_id, brand, bin, last4, exp_month, exp_year, fingerprint, dek_version, nonce,"
    " ciphertext, created_at, funding, category, issuer_country"
)
BANK_ACCOUNT_COLUMNS = (
    "merchant_id, id, country, currency, account_holder, scheme, bic, display, dek_version,"
    " nonce, ciphertext, updated_at"
)
ROTATION_COLUMNS = "id, kind, merchant_id, target, done_count"
SECRET_COLUMNS = "id, owner_id, purpose, dek_version, nonce, ciphertext"


def dek_of(row: asyncpg.Record) -> DekRecord:
    return DekRecord(
        merchant_id=row["merchant_id"],
        version=int(row["version"]),
        status=DekStatus(row["status"]),
        kek_id=row["kek_id"],
        wrapped_key=row["wrapped_key"],
    )


def sealed_of(row: asyncpg.Record) -> Sealed:
    return Sealed(
        dek_version=int(row["dek_version"]),
        nonce=bytes(row["nonce"]),
        ciphertext=bytes(row["ciphertext"]),
    )


def card_record_of(row: asyncpg.Record) -> CardRecord:
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
        sealed=sealed_of(row),
    )


def bank_account_record_of(row: asyncpg.Record) -> BankAccountRecord:
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
        sealed=sealed_of(row),
    )


def secret_record_of(row: asyncpg.Record) -> SecretRecord:
    return SecretRecord(
        id=row["id"], owner_id=row["owner_id"], purpose=row["purpose"], sealed=sealed_of(row)
    )


def rotation_of(row: asyncpg.Record) -> RotationRecord:
    return RotationRecord(
        id=row["id"],
        kind=RotationKind(row["kind"]),
        merchant_id=row["merchant_id"],
        target=str(row["target"]),
        done_count=int(row["done_count"]),
    )


def rows_affected(status: str) -> int:
    """Rows an UPDATE touched, from its command tag ("UPDATE 3")."""
    return int(status.rsplit(" ", 1)[-1])
