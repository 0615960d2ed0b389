"""The card vault: tokenization, detokenization for connectors, bank accounts, key rotation and
crypto-shredding, all over one data-key helper (envelope encryption, `vault.data_keys`).

`VaultService` is the one object the rest of Clearport holds; it composes the parts:

    tokens.CardTokens            tokenize, token reads, reveal for a connector
    bank_accounts.BankAccounts   set, get, decrypted for payouts
    secrets.SealedSecrets        secrets other features must use (webhook signing secrets)
    key_operations.KeyOperations KEK and DEK rotation, status, crypto-shredding
    data_keys.DataKeys           the DEK for writing, for reading a record, the DEK cache
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clearport.access.domain import Origin, Principal
from clearport.audit.service import Auditor
from clearport.bins.ports import BinLookup
from clearport.core.clock import Clock
from clearport.core.errors import Field
from clearport.core.invalidation import CacheSubscriber, Invalidations
from clearport.core.uow import Transaction, UnitOfWork
from clearport.idempotency.service import IdempotencyClaim, IdempotencyService
from clearport.merchants.ports import MerchantRepository
from clearport.vault.bank_accounts import BankAccounts
from clearport.vault.cards import CardInput, StoredCard
from clearport.vault.data_keys import DataKeys
from clearport.vault.domain import BankAccount, BankAccountView
from clearport.vault.key_operations import DEFAULT_BATCH, KeyOperations, RotationResult
from clearport.vault.ports import DekCache, KeyProvider, RecordCipher, VaultRepository
from clearport.vault.secrets import SealedSecrets
from clearport.vault.tokens import CardTokens

__all__ = [
    "BankAccount",
    "BankAccountView",
    "RotationResult",
    "StoredCard",
    "VaultService",
]


class VaultService:
    def __init__(
        self,
        uow: UnitOfWork,
        repo: VaultRepository,
        merchants: MerchantRepository,
        provider: KeyProvider,
        cipher: RecordCipher,
        cache: DekCache,
        auditor: Auditor,
        clock: Clock,
        invalidations: Invalidations,
        *,
        bins: BinLookup | None = None,
        idempotency: IdempotencyService | None = None,
    ) -> None:
        self._provider = provider
        self._cache = cache  # this process's unwrapped DEKs (tests empty it: a fresh process)
        self._data_keys = DataKeys(repo, provider, cipher, cache)
        data_keys = self._data_keys
        self._tokens = CardTokens(
            uow, repo, merchants, data_keys, provider, auditor, clock, bins, idempotency
        )
        self._bank_accounts = BankAccounts(uow, repo, merchants, data_keys, auditor)
        self._secrets = SealedSecrets(repo, data_keys)
        self._keys = KeyOperations(
            uow, repo, merchants, provider, data_keys, auditor, invalidations
        )

    @property
    def provider(self) -> KeyProvider:
        return self._provider

    @property
    def cached_data_keys(self) -> CacheSubscriber:
        """This process's unwrapped DEKs, as the subscriber of `CacheTopic.DATA_KEYS`."""
        return self._data_keys

    # --- card tokens -------------------------------------------------------------------------

    async def create_token(
        self, actor: Principal, card: CardInput, claim: IdempotencyClaim | None = None
    ) -> StoredCard:
        return await self._tokens.create_token(actor, card, claim)

    async def tokenize(self, tx: Transaction, merchant_id: str, card: CardInput) -> StoredCard:
        return await self._tokens.tokenize(tx, merchant_id, card)

    async def get_card(
        self, tx: Transaction, merchant_id: str, token_id: str, *, field: Field | str = "token"
    ) -> StoredCard:
        return await self._tokens.get_card(tx, merchant_id, token_id, field=field)

    async def read_token(self, actor: Principal, token_id: str) -> StoredCard:
        return await self._tokens.read_token(actor, token_id)

    async def reveal_for_connector(
        self,
        tx: Transaction,
        merchant_id: str,
        token_id: str,
        *,
        payment_id: str,
        connector: str,
    ) -> CardInput:
        return await self._tokens.reveal_for_connector(
            tx, merchant_id, token_id, payment_id=payment_id, connector=connector
        )

    # --- bank accounts -----------------------------------------------------------------------

    async def set_bank_account(
        self, actor: Principal, origin: Origin, merchant_id: str, account: BankAccount
    ) -> BankAccountView:
        return await self._bank_accounts.set_bank_account(actor, origin, merchant_id, account)

    async def get_bank_account(self, actor: Principal, merchant_id: str) -> BankAccountView:
        return await self._bank_accounts.get_bank_account(actor, merchant_id)

    async def bank_account_for_payout(
        self, tx: Transaction, merchant_id: str
    ) -> BankAccount | None:
        return await self._bank_accounts.bank_account_for_payout(tx, merchant_id)

    async def bank_accounts_for_payouts(
        self, tx: Transaction, merchant_ids: Sequence[str]
    ) -> dict[str, BankAccount]:
        return await self._bank_accounts.bank_accounts_for_payouts(tx, merchant_ids)

    # --- sealed secrets (owner: a merchant id, or domain.PLATFORM_OWNER) ----------------------

    async def seal_secret(
        self, tx: Transaction, owner_id: str, purpose: str, plaintext: bytes
    ) -> str:
        return await self._secrets.seal(tx, owner_id, purpose, plaintext)

    async def open_secrets(
        self, tx: Transaction, owner_id: str, secret_ids: Sequence[str]
    ) -> dict[str, bytes]:
        return await self._secrets.open(tx, owner_id, secret_ids)

    async def destroy_secrets(self, tx: Transaction, secret_ids: Sequence[str]) -> None:
        await self._secrets.destroy(tx, secret_ids)

    # --- key operations ----------------------------------------------------------------------

    async def rotate_kek(
        self,
        actor: Principal,
        origin: Origin,
        *,
        batch_size: int = DEFAULT_BATCH,
        max_batches: int | None = None,
    ) -> RotationResult:
        return await self._keys.rotate_kek(
            actor, origin, batch_size=batch_size, max_batches=max_batches
        )

    async def rotate_dek(
        self,
        actor: Principal,
        origin: Origin,
        merchant_id: str,
        *,
        batch_size: int = DEFAULT_BATCH,
        max_batches: int | None = None,
    ) -> RotationResult:
        return await self._keys.rotate_dek(
            actor, origin, merchant_id, batch_size=batch_size, max_batches=max_batches
        )

    async def status(self, actor: Principal) -> dict[str, Any]:
        return await self._keys.status(actor)

    async def shred(self, actor: Principal, origin: Origin, merchant_id: str) -> int:
        return await self._keys.shred(actor, origin, merchant_id)
