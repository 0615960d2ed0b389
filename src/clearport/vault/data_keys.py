"""The one path to a merchant's data-encryption keys (DEKs), for every vault use case.

Each merchant has a versioned DEK, stored only wrapped by the key provider's KEK. Records are
AES-256-GCM under the DEK with associated data binding merchant, record kind, record id and DEK
version (`vault.domain.aad_for`). Unwrapped DEKs are cached per process (bounded size and TTL,
decision 0101), but the DEK row is read on every use, so a shredded merchant's data stops
decrypting at once in every process; the shred's announcement then evicts the keys from every
process's memory (decision 0019).
"""

from __future__ import annotations

from clearport.core.uow import Transaction
from clearport.vault.domain import (
    CardDataDestroyed,
    DekRecord,
    RecordKind,
    Sealed,
    UndecryptableRecord,
    aad_for,
    dek_context,
    shredded,
)
from clearport.vault.ports import DekCache, KeyProvider, RecordCipher, VaultRepository


class DataKeys:
    def __init__(
        self, repo: VaultRepository, provider: KeyProvider, cipher: RecordCipher, cache: DekCache
    ) -> None:
        self._repo = repo
        self._provider = provider
        self._cipher = cipher
        self._cache = cache

    async def _unwrap(self, dek: DekRecord) -> bytes:
        """The plaintext key, from the cache when it was cached from this very wrapped blob."""
        if dek.wrapped_key is None or dek.kek_id is None:
            raise CardDataDestroyed("This merchant's card data has been destroyed.")
        cached = self._cache.get(dek.merchant_id, dek.version, dek.wrapped_key)
        if cached is not None:
            return cached
        key = await self._provider.unwrap(
            dek.wrapped_key, dek.kek_id, dek_context(dek.merchant_id, dek.version)
        )
        self._cache.put(dek.merchant_id, dek.version, dek.wrapped_key, key)
        return key

    async def _for_write(self, tx: Transaction, merchant_id: str) -> tuple[int, bytes]:
        """(version, key) of the merchant's active DEK; the first one is created here."""
        dek = await self._repo.active_dek(tx, merchant_id)
        if dek is None:
            existing = await self._repo.lock_merchant_deks(tx, merchant_id)
            if shredded(existing):
                raise CardDataDestroyed("This merchant's card keys have been destroyed.")
            dek = await self._repo.active_dek(tx, merchant_id)
        if dek is None:
            version = 1
            plaintext, wrapped, kek_id = await self._provider.generate_data_key(
                dek_context(merchant_id, version)
            )
            if await self._repo.insert_dek(
                tx, merchant_id, version, wrapped, kek_id, self._provider.name
            ):
                self._cache.put(merchant_id, version, wrapped, plaintext)
            dek = await self._repo.active_dek(tx, merchant_id)
            if dek is None:  # pragma: no cover - a concurrent shred in between
                raise CardDataDestroyed("This merchant's card keys have been destroyed.")
        return dek.version, await self._unwrap(dek)

    async def for_read(
        self, tx: Transaction, merchant_id: str, version: int, record_id: str
    ) -> bytes:
        """The key of DEK `version`, which `record_id` says it is encrypted under."""
        dek = await self._repo.get_dek(tx, merchant_id, version)
        if dek is None:
            raise UndecryptableRecord(
                f"Record {record_id} refers to DEK version {version}, which does not exist."
            )
        return await self._unwrap(dek)

    def _seal(
        self,
        key: bytes,
        version: int,
        merchant_id: str,
        kind: RecordKind,
        record_id: str,
        plaintext: bytes,
    ) -> Sealed:
        """`plaintext` encrypted under `key`, DEK `version`, bound to the record it belongs to."""
        nonce, ciphertext = self._cipher.encrypt(
            key, plaintext, aad_for(merchant_id, kind, record_id, version)
        )
        return Sealed(dek_version=version, nonce=nonce, ciphertext=ciphertext)

    async def encrypt(
        self,
        tx: Transaction,
        merchant_id: str,
        kind: RecordKind,
        record_id: str,
        plaintext: bytes,
    ) -> Sealed:
        """A new record's plaintext sealed under the merchant's active DEK."""
        version, key = await self._for_write(tx, merchant_id)
        return self._seal(key, version, merchant_id, kind, record_id, plaintext)

    async def decrypt(
        self, tx: Transaction, merchant_id: str, kind: RecordKind, record_id: str, sealed: Sealed
    ) -> bytes:
        """A stored record's plaintext, under the DEK version it names."""
        version = sealed.dek_version
        key = await self.for_read(tx, merchant_id, version, record_id)
        try:
            return self._cipher.decrypt(
                key, sealed.nonce, sealed.ciphertext, aad_for(merchant_id, kind, record_id, version)
            )
        except ValueError as exc:
            raise UndecryptableRecord(
                f"Record {record_id} ({kind}) fails authentication under DEK version {version}."
            ) from exc

    async def reseal(
        self,
        tx: Transaction,
        merchant_id: str,
        kind: RecordKind,
        record_id: str,
        sealed: Sealed,
        *,
        key: bytes,
        version: int,
    ) -> Sealed:
        """A stored record re-encrypted under DEK `version` (`key`): a DEK rotation's step."""
        plaintext = await self.decrypt(tx, merchant_id, kind, record_id, sealed)
        return self._seal(key, version, merchant_id, kind, record_id, plaintext)

    # The cache as a subscriber of CacheTopic.DATA_KEYS (core/invalidation.py): a shred or a
    # rotation's destroyed versions in any process drop the keys from this one's memory.

    def evict(self, merchant_id: str) -> None:
        """Drop the merchant's unwrapped DEKs from this process's memory."""
        self._cache.evict_merchant(merchant_id)

    def clear(self) -> None:
        self._cache.clear()
