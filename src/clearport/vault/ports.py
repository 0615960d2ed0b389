"""What the vault needs: key providers, the record cipher, the DEK cache and its tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from clearport.core.uow import Transaction
from clearport.vault.domain import (
    BankAccountRecord,
    CardRecord,
    DekRecord,
    RotationKind,
    RotationRecord,
    Sealed,
    SecretRecord,
)


class KeyProvider(Protocol):
    """Wraps and unwraps data-encryption keys under a key-encryption key (KEK) it never reveals.

    `context` is bound to the wrapped key (KMS EncryptionContext, AES-GCM associated data for
    the local keyring): unwrapping with another context fails. KEK ids are opaque strings that
    the vault stores beside each wrapped DEK.
    """

    name: str

    async def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes, str]:
        """A new 256-bit key: (plaintext, wrapped, kek_id)."""
        ...

    async def wrap(self, plaintext: bytes, context: Mapping[str, str]) -> tuple[bytes, str]:
        """(wrapped, kek_id) under the current KEK."""
        ...

    async def unwrap(self, wrapped: bytes, kek_id: str, context: Mapping[str, str]) -> bytes:
        """The plaintext DEK; raises KeyMaterialUnavailable when it cannot."""
        ...

    async def current_kek_id(self) -> str: ...

    async def rotate_kek(self) -> str:
        """Make a new KEK current (or pick up the one configured) and return its id."""
        ...

    async def retire_kek(self, kek_id: str) -> bool:
        """Destroy / stop using a KEK no DEK refers to. False when the provider cannot."""
        ...

    async def fingerprint_key(self) -> bytes:
        """The HMAC key for card fingerprints; never stored in the database."""
        ...

    async def kek_ids(self) -> list[str]:
        """KEKs whose key material this provider still holds (candidates for retirement)."""
        ...


class WrappedKeys(Protocol):
    """Key material wrapped by the key provider, shared by every machine through the database
    (the KMS-wrapped fingerprint key). Useless without the provider that wrapped it."""

    async def get(self, name: str) -> tuple[bytes, str] | None:
        """(wrapped, kek_id), or None."""
        ...

    async def put_if_absent(
        self, name: str, provider: str, kek_id: str, wrapped: bytes
    ) -> tuple[bytes, str]:
        """Keep this key unless one of that name exists; the one kept (first writer wins)."""
        ...


class RecordCipher(Protocol):
    """Authenticated encryption of one record under one DEK (AES-256-GCM)."""

    def encrypt(self, key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """(nonce, ciphertext) with a fresh random nonce."""
        ...

    def decrypt(self, key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """The plaintext; raises ValueError when authentication fails."""
        ...


class DekCache(Protocol):
    """Unwrapped DEKs in memory, bounded in size and age."""

    def get(self, merchant_id: str, version: int, wrapped: bytes) -> bytes | None:
        """The key, only if it was cached from this very wrapped blob: a DEK row from a rolled
        back transaction, or re-wrapped since, can never serve a stale key."""
        ...

    def put(self, merchant_id: str, version: int, wrapped: bytes, key: bytes) -> None: ...
    def evict_merchant(self, merchant_id: str) -> None: ...
    def clear(self) -> None: ...


class VaultRepository(Protocol):
    """Tables: vault_deks, card_tokens, merchant_bank_accounts, vault_rotations (see 0002)."""

    # -- DEKs --
    async def active_dek(self, tx: Transaction, merchant_id: str) -> DekRecord | None: ...
    async def get_dek(
        self, tx: Transaction, merchant_id: str, version: int
    ) -> DekRecord | None: ...
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
        ...

    async def lock_merchant_deks(self, tx: Transaction, merchant_id: str) -> list[DekRecord]: ...
    async def retire_deks_except(self, tx: Transaction, merchant_id: str, version: int) -> None: ...
    async def destroy_unreferenced_retired_deks(self, tx: Transaction, merchant_id: str) -> int: ...
    async def destroy_merchant_deks(self, tx: Transaction, merchant_id: str) -> int: ...
    async def deks_not_under(self, tx: Transaction, kek_id: str, limit: int) -> list[DekRecord]: ...
    async def rewrap_dek(
        self, tx: Transaction, dek: DekRecord, wrapped: bytes, kek_id: str
    ) -> bool:
        """Store `wrapped` if the row still holds `dek.wrapped_key` and nobody has it locked;
        False otherwise (re-wrapped or destroyed meanwhile, or busy: a later batch sees it)."""
        ...

    async def kek_references(self, tx: Transaction) -> dict[str, int]: ...

    # -- cards --
    async def insert_card(self, tx: Transaction, record: CardRecord) -> None: ...
    async def get_card(self, tx: Transaction, token_id: str) -> CardRecord | None: ...
    async def cards_to_reencrypt(
        self, tx: Transaction, merchant_id: str, target_version: int, limit: int
    ) -> list[CardRecord]: ...
    async def update_card_ciphertext(
        self, tx: Transaction, token_id: str, sealed: Sealed
    ) -> None: ...

    # -- bank accounts --
    async def upsert_bank_account(
        self, tx: Transaction, record: BankAccountRecord
    ) -> BankAccountRecord:
        """The row as stored, with the database's `updated_at`."""
        ...

    async def get_bank_account(
        self, tx: Transaction, merchant_id: str
    ) -> BankAccountRecord | None: ...
    async def get_bank_accounts(
        self, tx: Transaction, merchant_ids: Sequence[str]
    ) -> list[BankAccountRecord]:
        """The accounts of those of `merchant_ids` that have one, in any order (one read)."""
        ...

    async def bank_account_to_reencrypt(
        self, tx: Transaction, merchant_id: str, target_version: int
    ) -> BankAccountRecord | None: ...
    async def update_bank_account_ciphertext(
        self, tx: Transaction, merchant_id: str, sealed: Sealed
    ) -> None: ...

    # -- secrets (vault_secrets) --
    async def insert_secret(self, tx: Transaction, record: SecretRecord) -> None: ...
    async def get_secrets(self, tx: Transaction, secret_ids: Sequence[str]) -> list[SecretRecord]:
        """The rows that exist of `secret_ids`, in any order."""
        ...

    async def delete_secrets(self, tx: Transaction, secret_ids: Sequence[str]) -> None: ...
    async def secrets_to_reencrypt(
        self, tx: Transaction, owner_id: str, target_version: int, limit: int
    ) -> list[SecretRecord]: ...
    async def update_secret_ciphertext(
        self, tx: Transaction, secret_id: str, sealed: Sealed
    ) -> None: ...

    # -- rotations --
    async def open_rotation(
        self, tx: Transaction, kind: RotationKind, merchant_id: str | None
    ) -> RotationRecord | None: ...
    async def start_rotation(
        self,
        tx: Transaction,
        rotation_id: str,
        kind: RotationKind,
        merchant_id: str | None,
        target: str,
        actor: str,
    ) -> None: ...
    async def progress_rotation(self, tx: Transaction, rotation_id: str, done: int) -> None: ...
    async def finish_rotation(self, tx: Transaction, rotation_id: str) -> None: ...
    async def running_rotations(self, tx: Transaction) -> list[RotationRecord]: ...
    async def lock_rotation_start(self, tx: Transaction, kind: RotationKind) -> None: ...


class KeyCustody(Protocol):
    """The local keyring's master key, for the dual-control ceremony (`keys split|combine`)."""

    def master_key(self) -> bytes: ...
    def kcv(self) -> str:
        """The keyring's key check value: names the master key without revealing it."""
        ...

    def remove_master_key_file(self) -> bool:
        """Delete `master.key`; False when the key is configured otherwise or there is none."""
        ...

    def install_master_key(self, master: bytes) -> None:
        """Write `master` as the master key; ValueError if its KCV is not the keyring's."""
        ...


class ComponentSink(Protocol):
    """Where `keys split` puts the components: each where only its custodian will read it."""

    def write(self, components: Sequence[str]) -> list[str]:
        """Each component in a place of its own, in order, refusing to overwrite anything;
        where each went."""
        ...
