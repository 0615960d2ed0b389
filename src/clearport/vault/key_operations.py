"""Key operations: KEK and DEK rotation, their status, and crypto-shredding a closed merchant.

Rotations are resumable (decision 0103): each is a row in `vault_rotations`; work is selected by
predicate ("DEKs not under the target KEK", "records not under the target DEK version") in
bounded batches, so an interrupted run simply continues where the predicate says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clearport.access.domain import Origin, Permission, Principal
from clearport.audit.service import Auditor
from clearport.core.errors import InvalidState, NotFound, present
from clearport.core.ids import new_id, parse_id
from clearport.core.invalidation import CacheTopic, Invalidations
from clearport.core.uow import UnitOfWork
from clearport.merchants.domain import MerchantStatus
from clearport.merchants.ports import MerchantRepository
from clearport.vault.data_keys import DataKeys
from clearport.vault.domain import (
    CardDataDestroyed,
    DekRecord,
    RecordKind,
    RotationKind,
    dek_context,
    shredded,
)
from clearport.vault.ports import KeyProvider, VaultRepository

DEFAULT_BATCH = 500
MAX_BATCH = 10_000


@dataclass(frozen=True)
class RotationResult:
    rotation_id: str
    kind: str
    target: str
    resumed: bool
    processed: int
    finished: bool
    retired: tuple[str, ...] = ()


class KeyOperations:
    def __init__(
        self,
        uow: UnitOfWork,
        repo: VaultRepository,
        merchants: MerchantRepository,
        provider: KeyProvider,
        data_keys: DataKeys,
        auditor: Auditor,
        invalidations: Invalidations,
    ) -> None:
        self._uow = uow
        self._repo = repo
        self._merchants = merchants
        self._provider = provider
        self._data_keys = data_keys
        self._auditor = auditor
        self._invalidations = invalidations

    # --- KEK rotation ------------------------------------------------------------------------

    async def rotate_kek(
        self,
        actor: Principal,
        origin: Origin,
        *,
        batch_size: int = DEFAULT_BATCH,
        max_batches: int | None = None,
    ) -> RotationResult:
        """New KEK, every DEK re-wrapped under it in batches, old KEKs retired once unreferenced.

        `max_batches` bounds one run (the rest is resumed by the next run)."""
        actor.require(Permission.KEYS_MANAGE)
        batch_size = max(1, min(batch_size, MAX_BATCH))
        kind = RotationKind.KEK
        async with self._uow.transaction() as tx:
            # The provider is called under this advisory lock: it is what makes two operators
            # starting at once share one new KEK (decision 0103).
            await self._repo.lock_rotation_start(tx, kind)
            open_rotation = await self._repo.open_rotation(tx, kind, None)
            if open_rotation is not None:
                rotation_id, target, resumed = open_rotation.id, open_rotation.target, True
            else:
                target = await self._provider.rotate_kek()
                rotation_id, resumed = new_id("rot"), False
                await self._repo.start_rotation(tx, rotation_id, kind, None, target, actor.actor)
                await self._auditor.record(
                    tx,
                    actor=actor.actor,
                    event_type="vault.kek_rotation_started",
                    resource=rotation_id,
                    origin=origin,
                    details={"kek": target},
                )
        processed, batches = 0, 0
        while max_batches is None or batches < max_batches:
            # Claim, re-wrap, write: the provider (KMS, over the network) is called with no
            # transaction open and no row locked; the write keeps only rows nobody changed.
            async with self._uow.autocommit() as tx:
                deks = await self._repo.deks_not_under(tx, target, batch_size)
            rewrapped = [(dek, *await self._rewrap(dek, target)) for dek in deks]
            async with self._uow.transaction() as tx:
                written = 0
                for dek, wrapped, kek_id in rewrapped:
                    written += await self._repo.rewrap_dek(tx, dek, wrapped, kek_id)
                await self._repo.progress_rotation(tx, rotation_id, written)
            processed += written
            batches += 1
            if len(deks) < batch_size:
                break
        else:
            return RotationResult(rotation_id, kind, target, resumed, processed, False)
        kek_ids = await self._provider.kek_ids()
        async with self._uow.transaction() as tx:
            if await self._repo.deks_not_under(tx, target, 1):
                return RotationResult(rotation_id, kind, target, resumed, processed, False)
            references = await self._repo.kek_references(tx)
            retired: list[str] = []
            for kek_id in kek_ids:
                unreferenced = kek_id != target and references.get(kek_id, 0) == 0
                if unreferenced and await self._provider.retire_kek(kek_id):
                    retired.append(kek_id)
            await self._repo.finish_rotation(tx, rotation_id)
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="vault.kek_rotated",
                resource=rotation_id,
                origin=origin,
                details={"kek": target, "retired": retired},
            )
        return RotationResult(rotation_id, kind, target, resumed, processed, True, tuple(retired))

    async def _rewrap(self, dek: DekRecord, target: str) -> tuple[bytes, str]:
        """`dek` unwrapped and wrapped again under the current KEK, which must be `target`."""
        wrapped = present(dek.wrapped_key, "only DEKs with a wrapped key are rotated")
        kek_id = present(dek.kek_id, "a wrapped DEK names its KEK")
        context = dek_context(dek.merchant_id, dek.version)
        plaintext = await self._provider.unwrap(wrapped, kek_id, context)
        wrapped, kek_id = await self._provider.wrap(plaintext, context)
        if kek_id != target:
            raise InvalidState("The current KEK changed during the rotation.")
        return wrapped, kek_id

    # --- DEK rotation ------------------------------------------------------------------------

    async def rotate_dek(
        self,
        actor: Principal,
        origin: Origin,
        merchant_id: str,
        *,
        batch_size: int = DEFAULT_BATCH,
        max_batches: int | None = None,
    ) -> RotationResult:
        """New DEK version for new records; old records re-encrypted under it in batches."""
        actor.require(Permission.KEYS_MANAGE)
        parse_id(merchant_id, "mer", field="merchant")
        batch_size = max(1, min(batch_size, MAX_BATCH))
        kind = RotationKind.DEK
        async with self._uow.transaction() as tx:
            if await self._merchants.get(tx, merchant_id) is None:
                raise NotFound(f"No such merchant: '{merchant_id}'.", field="merchant")
            deks = await self._repo.lock_merchant_deks(tx, merchant_id)
            open_rotation = await self._repo.open_rotation(tx, kind, merchant_id)
            if open_rotation is not None:
                rotation_id, target, resumed = open_rotation.id, int(open_rotation.target), True
            else:
                if shredded(deks):
                    raise CardDataDestroyed("This merchant's card keys have been destroyed.")
                target = max((d.version for d in deks), default=0) + 1
                _, wrapped, kek_id = await self._provider.generate_data_key(
                    dek_context(merchant_id, target)
                )
                await self._repo.retire_deks_except(tx, merchant_id, target)
                await self._repo.insert_dek(
                    tx, merchant_id, target, wrapped, kek_id, self._provider.name
                )
                rotation_id, resumed = new_id("rot"), False
                await self._repo.start_rotation(
                    tx, rotation_id, kind, merchant_id, str(target), actor.actor
                )
                await self._auditor.record(
                    tx,
                    actor=actor.actor,
                    event_type="vault.dek_rotation_started",
                    resource=merchant_id,
                    origin=origin,
                    details={"rotation": rotation_id, "dek_version": target},
                )
        keys = self._data_keys
        processed, batches = 0, 0
        while max_batches is None or batches < max_batches:
            async with self._uow.transaction() as tx:
                new_key = await keys.for_read(tx, merchant_id, target, rotation_id)
                cards = await self._repo.cards_to_reencrypt(tx, merchant_id, target, batch_size)
                for record in cards:
                    token_id = record.card.token_id
                    sealed = await keys.reseal(
                        tx,
                        merchant_id,
                        RecordKind.CARD,
                        token_id,
                        record.sealed,
                        key=new_key,
                        version=target,
                    )
                    await self._repo.update_card_ciphertext(tx, token_id, sealed)
                await self._repo.progress_rotation(tx, rotation_id, len(cards))
            processed += len(cards)
            batches += 1
            if len(cards) < batch_size:
                break
        else:
            return RotationResult(rotation_id, kind, str(target), resumed, processed, False)
        async with self._uow.transaction() as tx:
            new_key = await keys.for_read(tx, merchant_id, target, rotation_id)
            account = await self._repo.bank_account_to_reencrypt(tx, merchant_id, target)
            if account is not None:
                sealed = await keys.reseal(
                    tx,
                    merchant_id,
                    RecordKind.BANK_ACCOUNT,
                    account.account.id,
                    account.sealed,
                    key=new_key,
                    version=target,
                )
                await self._repo.update_bank_account_ciphertext(tx, merchant_id, sealed)
                processed += 1
            # Sealed secrets (webhook signing secrets): a handful per merchant, one batch.
            secrets = await self._repo.secrets_to_reencrypt(tx, merchant_id, target, batch_size)
            for secret in secrets:
                sealed = await keys.reseal(
                    tx,
                    merchant_id,
                    RecordKind.SECRET,
                    secret.id,
                    secret.sealed,
                    key=new_key,
                    version=target,
                )
                await self._repo.update_secret_ciphertext(tx, secret.id, sealed)
            processed += len(secrets)
            if await self._repo.cards_to_reencrypt(
                tx, merchant_id, target, 1
            ) or await self._repo.secrets_to_reencrypt(tx, merchant_id, target, 1):
                return RotationResult(rotation_id, kind, str(target), resumed, processed, False)
            destroyed = await self._repo.destroy_unreferenced_retired_deks(tx, merchant_id)
            if destroyed:
                await self._invalidations.publish(tx, CacheTopic.DATA_KEYS, merchant_id)
            await self._repo.finish_rotation(tx, rotation_id)
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="vault.dek_rotated",
                resource=merchant_id,
                origin=origin,
                details={
                    "rotation": rotation_id,
                    "dek_version": target,
                    "old_versions_destroyed": destroyed,
                },
            )
        return RotationResult(rotation_id, kind, str(target), resumed, processed, True)

    # --- status and crypto-shredding ---------------------------------------------------------

    async def status(self, actor: Principal) -> dict[str, Any]:
        """For `clearport keys status`: current KEK, DEKs per KEK, rotations still running."""
        actor.require(Permission.KEYS_MANAGE)
        async with self._uow.transaction() as tx:
            references = await self._repo.kek_references(tx)
            running = await self._repo.running_rotations(tx)
        return {
            "provider": self._provider.name,
            "current_kek": await self._provider.current_kek_id(),
            "keks": await self._provider.kek_ids(),
            "deks_per_kek": references,
            "running_rotations": [
                {
                    "id": r.id,
                    "kind": str(r.kind),
                    "merchant": r.merchant_id,
                    "target": r.target,
                    "done": r.done_count,
                }
                for r in running
            ],
        }

    async def shred(self, actor: Principal, origin: Origin, merchant_id: str) -> int:
        """Destroy every DEK of a closed merchant: its card data becomes unrecoverable.

        Display columns (brand, BIN, last 4) and all payment history stay."""
        actor.require(Permission.SECURITY_SHRED)
        parse_id(merchant_id, "mer", field="merchant")
        async with self._uow.transaction() as tx:
            merchant = await self._merchants.get(tx, merchant_id, for_update=True)
            if merchant is None:
                raise NotFound(f"No such merchant: '{merchant_id}'.", field="merchant")
            if merchant.status is not MerchantStatus.CLOSED:
                raise InvalidState(
                    "Only a closed merchant can be shredded: close it first.", field="merchant"
                )
            await self._repo.lock_merchant_deks(tx, merchant_id)
            destroyed = await self._repo.destroy_merchant_deks(tx, merchant_id)
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="merchant.shredded",
                resource=merchant_id,
                origin=origin,
                details={"deks_destroyed": destroyed},
            )
            # Every process (this one too, through its listener) drops the merchant's keys
            # once this commits.
            await self._invalidations.publish(tx, CacheTopic.DATA_KEYS, merchant_id)
        self._data_keys.evict(merchant_id)  # here at once, not a listener's moment later
        return destroyed
