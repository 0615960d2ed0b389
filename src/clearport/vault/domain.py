"""Vault rules without I/O: associated data, fingerprints, bank-account validation, errors, and
the records the vault's tables hold.

Every encrypted record is bound to where it belongs by its AES-GCM associated data
(`aad_for`): merchant, record kind, record id and DEK version. A ciphertext copied to another row
or merchant, or read under another DEK version, fails authentication instead of decrypting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from clearport.core.countries import parse_country
from clearport.core.errors import InternalError, InvalidRequest, InvalidState, present
from clearport.core.sensitive import SensitiveStr
from clearport.vault.cards import StoredCard

AAD_FORMAT = "clearport.vault.v1"
KEY_BYTES = 32  # AES-256: master keys, KEKs and DEKs alike
FINGERPRINT_BYTES = 16  # 128 bits of HMAC-SHA256: 26 base32 characters


class RecordKind(StrEnum):
    CARD = "card"
    BANK_ACCOUNT = "bank_account"
    SECRET = "secret"  # a secret a feature must use, not only check (webhook signing secrets)


# The owner of the platform's own secrets: its DEKs belong to no merchant (migration 0009).
PLATFORM_OWNER = "platform"


class DekStatus(StrEnum):
    ACTIVE = "active"  # encrypts new records; one per merchant
    RETIRED = "retired"  # decrypts old records until a DEK rotation re-encrypts them
    DESTROYED = "destroyed"  # wrapped key deleted: its records are noise


class RotationKind(StrEnum):
    KEK = "kek"
    DEK = "dek"


class UndecryptableRecord(InternalError):
    """A stored record that cannot be decrypted: unknown DEK version, wrong associated data,
    corrupted ciphertext. The message names the record id only, never its contents."""

    default_code = "undecryptable_record"


class KeyMaterialUnavailable(InternalError):
    """The key provider cannot unwrap a DEK (KEK missing, keyring locked, KMS refused)."""

    default_code = "key_unavailable"


class CardDataDestroyed(InvalidState):
    """The merchant's keys were destroyed (crypto-shredding): its card data is gone for good."""

    default_code = "card_data_destroyed"


def aad_for(merchant_id: str, kind: RecordKind, record_id: str, dek_version: int) -> bytes:
    """Canonical associated data: a JSON array, so no field can bleed into the next."""
    return json.dumps(
        [AAD_FORMAT, merchant_id, str(kind), record_id, dek_version], separators=(",", ":")
    ).encode()


def dek_context(merchant_id: str, dek_version: int) -> dict[str, str]:
    """The encryption context a DEK is wrapped under (KMS EncryptionContext, local AAD)."""
    return {"purpose": "clearport-dek", "merchant": merchant_id, "dek_version": str(dek_version)}


def fingerprint(key: bytes, merchant_id: str, digits: str) -> str:
    """Keyed, per-merchant: the same number gives the same value for one merchant only.

    Base32 (RFC 4648, lower case): its alphabet has 6 digits in 32 symbols, so a fingerprint
    practically never holds a 13+ digit run that the PAN redactor would mask (hex would, for
    about 1 in 300 fingerprints, in logs and in stored idempotent responses)."""
    mac = hmac.new(key, f"{merchant_id}\x00{digits}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac[:FINGERPRINT_BYTES]).decode().rstrip("=").lower()


# --- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sealed:
    """A record's encrypted part: AES-256-GCM under one DEK version, with `aad_for` as AAD."""

    dek_version: int
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class DekRecord:
    """A vault_deks row: a merchant's DEK version, stored only wrapped under a KEK."""

    merchant_id: str
    version: int
    status: DekStatus
    kek_id: str | None  # None once destroyed, like the wrapped key
    wrapped_key: bytes | None


def shredded(deks: list[DekRecord]) -> bool:
    """A merchant whose DEKs were all destroyed: it had some, and none can decrypt any more."""
    return bool(deks) and all(d.status is DekStatus.DESTROYED for d in deks)


@dataclass(frozen=True)
class CardRecord:
    """A card_tokens row: the display in clear, the number and holder name sealed."""

    card: StoredCard
    sealed: Sealed


@dataclass(frozen=True)
class RotationRecord:
    """A vault_rotations row still running: what to resume."""

    id: str
    kind: RotationKind
    merchant_id: str | None  # a DEK rotation's merchant; None for a KEK rotation
    target: str  # the KEK id, or the DEK version as text
    done_count: int


@dataclass(frozen=True)
class SecretRecord:
    """A vault_secrets row: a secret sealed under its owner's DEK (a merchant or the platform)."""

    id: str
    owner_id: str
    purpose: str
    sealed: Sealed


# --- bank accounts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BankAccount:
    """A merchant's payout destination. Secret parts stay wrapped until a payout file needs them."""

    country: str
    currency: str
    account_holder: str
    routing_number: SensitiveStr | None = None
    account_number: SensitiveStr | None = None
    iban: SensitiveStr | None = None
    bic: str | None = None

    @property
    def scheme(self) -> str:
        return "iban" if self.iban is not None else "us_ach"


@dataclass(frozen=True)
class BankAccountView:
    """What may be shown: public parts plus masked tails."""

    id: str
    merchant_id: str
    country: str
    currency: str
    account_holder: str
    scheme: str
    bic: str | None
    display: dict[str, str]
    # The database stamps the row when it is written; every view read back has it.
    updated_at: datetime | None = None


@dataclass(frozen=True)
class BankAccountRecord:
    """A merchant_bank_accounts row: the view in clear, the secret numbers sealed."""

    account: BankAccountView
    sealed: Sealed


def aba_valid(routing: str) -> bool:
    """ABA routing number checksum (3-7-1 weights)."""
    if len(routing) != 9 or not routing.isascii() or not routing.isdigit():
        return False
    d = [int(c) for c in routing]
    total = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616 mod-97 check on an IBAN without spaces."""
    if not 15 <= len(iban) <= 34 or not iban.isascii() or not iban.isalnum():
        return False
    if not (iban[:2].isalpha() and iban[2:4].isdigit()):
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(c, 36)) for c in moved.upper())
    return int(number) % 97 == 1


def validate_bank_account(account: BankAccount) -> BankAccount:
    """Checks the fields and returns the account normalized (country, IBAN and BIC in upper
    case, the IBAN without spaces)."""
    country = parse_country(account.country.upper())
    if not 1 <= len(account.account_holder) <= 140:
        raise InvalidRequest(
            "'account_holder' must be 1 to 140 characters.", field="account_holder"
        )
    us = account.routing_number is not None or account.account_number is not None
    sepa = account.iban is not None or account.bic is not None
    if us and sepa:
        raise InvalidRequest(
            "Give either 'routing_number' + 'account_number' or 'iban' + 'bic', not both.",
            field="iban",
        )
    if us:
        if account.routing_number is None:
            raise InvalidRequest("Missing 'routing_number'.", field="routing_number")
        if account.account_number is None:
            raise InvalidRequest("Missing 'account_number'.", field="account_number")
        if not aba_valid(account.routing_number.reveal()):
            raise InvalidRequest(
                "'routing_number' is not a valid ABA routing number.", field="routing_number"
            )
        number = account.account_number.reveal()
        if not 4 <= len(number) <= 17 or not number.isascii() or not number.isdigit():
            raise InvalidRequest("'account_number' must be 4 to 17 digits.", field="account_number")
        return replace(account, country=country)
    if account.iban is None:
        raise InvalidRequest(
            "Give 'routing_number' + 'account_number' or 'iban' + 'bic'.", field="iban"
        )
    if account.bic is None:
        raise InvalidRequest("Missing 'bic'.", field="bic")
    iban = account.iban.reveal().replace(" ", "").upper()
    if not iban_valid(iban):
        raise InvalidRequest("'iban' is not a valid IBAN.", field="iban")
    bic = account.bic.upper()
    if len(bic) not in (8, 11) or not bic.isascii() or not bic.isalnum():
        raise InvalidRequest("'bic' must be 8 or 11 letters and digits.", field="bic")
    return BankAccount(
        country=country,
        currency=account.currency,
        account_holder=account.account_holder,
        iban=SensitiveStr(iban),
        bic=bic,
    )


def bank_account_payload(account: BankAccount) -> bytes:
    """The plaintext that gets encrypted (secret fields only)."""
    secret = {
        "routing_number": account.routing_number,
        "account_number": account.account_number,
        "iban": account.iban,
    }
    return json.dumps(
        {k: v.reveal() for k, v in secret.items() if v is not None}, separators=(",", ":")
    ).encode()


def bank_account_from_payload(
    payload: bytes, *, country: str, currency: str, account_holder: str, bic: str | None
) -> BankAccount:
    data = json.loads(payload)

    def opt(name: str) -> SensitiveStr | None:
        value = data.get(name)
        return None if value is None else SensitiveStr(str(value))

    return BankAccount(
        country=country,
        currency=currency,
        account_holder=account_holder,
        routing_number=opt("routing_number"),
        account_number=opt("account_number"),
        iban=opt("iban"),
        bic=bic,
    )


def mask_tail(value: str) -> str:
    return "****" + value[-4:]


def bank_account_display(account: BankAccount) -> dict[str, str]:
    """What is stored in clear beside the sealed numbers: masked tails, the routing number."""
    if account.iban is not None:
        return {"iban": mask_tail(account.iban.reveal())}
    routing = present(account.routing_number, "a US account has a routing number")
    number = present(account.account_number, "a US account has an account number")
    return {"routing_number": routing.reveal(), "account_number": mask_tail(number.reveal())}
