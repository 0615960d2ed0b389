"""Secrets a feature must use later, not only check: sealed under the owner's DEK, like cards.

A webhook endpoint's signing secret is the first: delivery must sign with it, so it cannot be
hashed like an API key. Its owner is the endpoint's merchant, or `PLATFORM_OWNER` for the
platform's own secrets (the platform has DEKs of its own). The same machinery as every record:
associated data binds owner, kind, id and DEK version; a DEK rotation re-encrypts secrets with
the owner's cards; crypto-shredding a merchant destroys its secrets too.
"""

from __future__ import annotations

from collections.abc import Sequence

from clearport.core.errors import invariant
from clearport.core.ids import new_id
from clearport.core.uow import Transaction
from clearport.vault.data_keys import DataKeys
from clearport.vault.domain import RecordKind, SecretRecord, UndecryptableRecord
from clearport.vault.ports import VaultRepository

# A secret worth sealing is short; anything longer is a misuse of this store.
MAX_SECRET_BYTES = 4096


class SealedSecrets:
    def __init__(self, repo: VaultRepository, data_keys: DataKeys) -> None:
        self._repo = repo
        self._data_keys = data_keys

    async def seal(self, tx: Transaction, owner_id: str, purpose: str, plaintext: bytes) -> str:
        """Store `plaintext` sealed under `owner_id`'s DEK; the id to open it by."""
        invariant(0 < len(plaintext) <= MAX_SECRET_BYTES, "a secret is 1 to 4096 bytes")
        secret_id = new_id("sec")
        sealed = await self._data_keys.encrypt(
            tx, owner_id, RecordKind.SECRET, secret_id, plaintext
        )
        await self._repo.insert_secret(tx, SecretRecord(secret_id, owner_id, purpose, sealed))
        return secret_id

    async def open(
        self, tx: Transaction, owner_id: str, secret_ids: Sequence[str]
    ) -> dict[str, bytes]:
        """The plaintexts of `secret_ids`, each of which must exist and belong to `owner_id`
        (else UndecryptableRecord, naming the id only)."""
        records = {r.id: r for r in await self._repo.get_secrets(tx, secret_ids)}
        opened: dict[str, bytes] = {}
        for secret_id in secret_ids:
            record = records.get(secret_id)
            if record is None or record.owner_id != owner_id:
                raise UndecryptableRecord(f"Secret {secret_id} does not exist for its owner.")
            opened[secret_id] = await self._data_keys.decrypt(
                tx, owner_id, RecordKind.SECRET, secret_id, record.sealed
            )
        return opened

    async def destroy(self, tx: Transaction, secret_ids: Sequence[str]) -> None:
        """Delete the sealed secrets: nothing can open them again."""
        if secret_ids:
            await self._repo.delete_secrets(tx, secret_ids)
