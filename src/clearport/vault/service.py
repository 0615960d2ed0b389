"""The card vault: tokenization, detokenization for connectors, bank accounts, key rotation and
crypto-shredding.

Envelope encryption: each merchant has a versioned data-encryption key (DEK), stored only wrapped
by the key provider's current KEK. Records are AES-256-GCM under the DEK with associated data
binding merchant, record kind, record id and DEK version (`vault.domain.aad_for`). Unwrapped DEKs
are cached per process (bounded size and TTL), but the DEK row is read on every use so a
shredded merchant's data stops decrypting at once in every process.

Rotations are resumable: each is a row in `vault_rotations`; work is selected by predicate
("DEKs not under the target KEK", "records not under the target DEK version") in bounded batches,
one transaction each, so an interrupted run simply continues where the predicate says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clearport.access.domain import Origin, Permission, Principal
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import Field, InvalidState, NotFound, PermissionDenied, present
from clearport.core.ids import is_id, new_id, parse_id
from clearport.core.money import parse_currency
from clearport.core.sensitive import SensitiveStr
from clearport.core.uow import Transaction, UnitOfWork
from clearport.merchants.domain import MerchantStatus
from clearport.merchants.ports import MerchantRepository
from clearport.vault.cards import CardInput, bin_of, last4_of, normalize_number, validate_card
from clearport.vault.domain import (
    BankAccount,
    CardDataDestroyed,
    RecordKind,
    UndecryptableRecord,
    aad_for,
    bank_account_from_payload,
    bank_account_payload,
    dek_context,
    fingerprint,
    mask_tail,
    validate_bank_account,
)
from clearport.vault.ports import DekCache, KeyProvider, RecordCipher, VaultRepository

__all__ = [
    "BankAccount",
    "BankAccountView",
    "RotationResult",
    "StoredCard",
    "VaultService",
]

DEFAULT_BATCH = 500
MAX_BATCH = 10_000
SYSTEM_ACTOR = "system:vault"
INTERNAL_ORIGIN = Origin("internal")


@dataclass(frozen=True)
class StoredCard:
    token_id: str
    merchant_id: str
    brand: str
    bin: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str
    created_at: datetime | None = None


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
    updated_at: datetime


@dataclass(frozen=True)
class RotationResult:
    rotation_id: str
    kind: str
    target: str
    resumed: bool
    processed: int
    finished: bool
    retired: tuple[str, ...] = ()


def _stored(row: Any) -> StoredCard:
    return StoredCard(
        token_id=row["id"],
        merchant_id=row["merchant_id"],
        brand=row["brand"],
        bin=row["bin"],
        last4=row["last4"],
        exp_month=int(row["exp_month"]),
        exp_year=int(row["exp_year"]),
        fingerprint=row["fingerprint"],
        created_at=row["created_at"],
    )


def _bank_view(row: Any) -> BankAccountView:
    return BankAccountView(
        id=row["id"],
        merchant_id=row["merchant_id"],
        country=row["country"],
        currency=row["currency"],
        account_holder=row["account_holder"],
        scheme=row["scheme"],
        bic=row["bic"],
        display=dict(row["display"]),
        updated_at=row["updated_at"],
    )


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
    ) -> None:
        self._uow = uow
        self._repo = repo
        self._merchants = merchants
        self._provider = provider
        self._cipher = cipher
        self._cache = cache
        self._auditor = auditor
        self._clock = clock

    @property
    def provider(self) -> KeyProvider:
        return self._provider

    # --- DEKs -------------------------------------------------------------------------------

    async def _unwrap(self, row: Any) -> bytes:
        merchant_id, version = row["merchant_id"], int(row["version"])
        if row["wrapped_key"] is None:
            raise CardDataDestroyed("This merchant's card data has been destroyed.")
        wrapped = bytes(row["wrapped_key"])
        cached = self._cache.get(merchant_id, version, wrapped)
        if cached is not None:
            return cached
        key = await self._provider.unwrap(wrapped, row["kek_id"], dek_context(merchant_id, version))
        self._cache.put(merchant_id, version, wrapped, key)
        return key

    async def _dek_for_write(self, tx: Transaction, merchant_id: str) -> tuple[int, bytes]:
        row = await self._repo.active_dek(tx, merchant_id)
        if row is None:
            existing = await self._repo.lock_merchant_deks(tx, merchant_id)
            if existing and all(r["status"] == "destroyed" for r in existing):
                raise CardDataDestroyed("This merchant's card keys have been destroyed.")
            row = await self._repo.active_dek(tx, merchant_id)
        if row is None:
            version = 1
            plaintext, wrapped, kek_id = await self._provider.generate_data_key(
                dek_context(merchant_id, version)
            )
            if await self._repo.insert_dek(
                tx, merchant_id, version, wrapped, kek_id, self._provider.name
            ):
                self._cache.put(merchant_id, version, wrapped, plaintext)
            row = await self._repo.active_dek(tx, merchant_id)
            if row is None:  # pragma: no cover - a concurrent shred in between
                raise CardDataDestroyed("This merchant's card keys have been destroyed.")
        return int(row["version"]), await self._unwrap(row)

    async def _dek_for_read(
        self, tx: Transaction, merchant_id: str, version: int, record_id: str
    ) -> bytes:
        row = await self._repo.get_dek(tx, merchant_id, version)
        if row is None:
            raise UndecryptableRecord(
                f"Record {record_id} refers to DEK version {version}, which does not exist."
            )
        return await self._unwrap(row)

    def _decrypt(
        self,
        key: bytes,
        row: Any,
        kind: RecordKind,
        record_id: str,
        merchant_id: str,
        version: int,
    ) -> bytes:
        try:
            return self._cipher.decrypt(
                key,
                bytes(row["nonce"]),
                bytes(row["ciphertext"]),
                aad_for(merchant_id, kind, record_id, version),
            )
        except ValueError as exc:
            raise UndecryptableRecord(
                f"Record {record_id} ({kind}) fails authentication under DEK version {version}."
            ) from exc

    # --- tokens ------------------------------------------------------------------------------

    async def _require_usable_merchant(self, tx: Transaction, merchant_id: str) -> None:
        merchant = await self._merchants.get(tx, merchant_id)
        if merchant is None:
            raise NotFound("No such merchant.", field="merchant")
        if merchant.status is not MerchantStatus.ACTIVE:
            raise PermissionDenied(
                "This merchant is not active and cannot store cards.", code="merchant_inactive"
            )

    async def create_token(self, actor: Principal, card: CardInput) -> StoredCard:
        """POST /v1/tokens: a merchant key stores a card."""
        merchant_id = actor.require_merchant()
        validate_card(card, self._clock.now().date())  # fail before opening a transaction
        async with self._uow.transaction() as tx:
            await self._require_usable_merchant(tx, merchant_id)
            return await self.tokenize(tx, merchant_id, card)

    async def tokenize(self, tx: Transaction, merchant_id: str, card: CardInput) -> StoredCard:
        """Validate, encrypt and insert a token row inside the caller's transaction."""
        now = self._clock.now()
        brand = validate_card(card, now.date())
        digits = normalize_number(card.number.reveal())
        token_id = new_id("tok")
        version, key = await self._dek_for_write(tx, merchant_id)
        payload = json.dumps(
            {"number": digits, "holder_name": card.holder_name}, separators=(",", ":")
        ).encode()
        nonce, ciphertext = self._cipher.encrypt(
            key, payload, aad_for(merchant_id, RecordKind.CARD, token_id, version)
        )
        stored = StoredCard(
            token_id=token_id,
            merchant_id=merchant_id,
            brand=brand,
            bin=bin_of(digits),
            last4=last4_of(digits),
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            fingerprint=fingerprint(await self._provider.fingerprint_key(), merchant_id, digits),
            created_at=now,
        )
        await self._repo.insert_card(
            tx,
            {
                "id": token_id,
                "merchant_id": merchant_id,
                "brand": brand,
                "bin": stored.bin,
                "last4": stored.last4,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "fingerprint": stored.fingerprint,
                "dek_version": version,
                "nonce": nonce,
                "ciphertext": ciphertext,
            },
        )
        return stored

    async def _card_row(
        self, tx: Transaction, merchant_id: str, token_id: str, field: Field | str
    ) -> Any:
        row = await self._repo.get_card(tx, token_id) if is_id(token_id, "tok") else None
        if row is None or row["merchant_id"] != merchant_id:
            raise NotFound(f"No such token: '{token_id}'.", field=field)
        return row

    async def get_card(
        self, tx: Transaction, merchant_id: str, token_id: str, *, field: Field | str = "token"
    ) -> StoredCard:
        return _stored(await self._card_row(tx, merchant_id, token_id, field))

    async def read_token(self, actor: Principal, token_id: str) -> StoredCard:
        """GET /v1/tokens/{id}: the display, never the number."""
        merchant_id = actor.require_merchant()
        async with self._uow.transaction() as tx:
            return await self.get_card(tx, merchant_id, token_id, field="id")

    async def _reveal(self, tx: Transaction, row: Any) -> CardInput:
        merchant_id, version = row["merchant_id"], int(row["dek_version"])
        key = await self._dek_for_read(tx, merchant_id, version, row["id"])
        data = json.loads(self._decrypt(key, row, RecordKind.CARD, row["id"], merchant_id, version))
        return CardInput(
            number=SensitiveStr(data["number"]),
            exp_month=int(row["exp_month"]),
            exp_year=int(row["exp_year"]),
            holder_name=data.get("holder_name"),
        )

    async def reveal_for_connector(
        self,
        tx: Transaction,
        merchant_id: str,
        token_id: str,
        *,
        payment_id: str,
        connector: str,
    ) -> CardInput:
        """Detokenize on the way to a connector; audited (which payment, which connector)."""
        row = await self._card_row(tx, merchant_id, token_id, ("source", "token"))
        card = await self._reveal(tx, row)
        await self._auditor.record(
            tx,
            actor=f"merchant:{merchant_id}",
            event_type="card.detokenized",
            resource=payment_id,
            origin=INTERNAL_ORIGIN,
            details={"token": token_id, "connector": connector},
        )
        return card

    # --- bank accounts -----------------------------------------------------------------------

    async def set_bank_account(
        self, actor: Principal, origin: Origin, merchant_id: str, account: BankAccount
    ) -> BankAccountView:
        actor.require(Permission.FINANCE_WRITE)
        parse_id(merchant_id, "mer", field="id")
        currency = parse_currency(account.currency, field="currency")
        account = validate_bank_account(
            BankAccount(
                country=account.country.upper(),
                currency=currency,
                account_holder=account.account_holder,
                routing_number=account.routing_number,
                account_number=account.account_number,
                iban=account.iban,
                bic=account.bic,
            )
        )
        async with self._uow.transaction() as tx:
            merchant = await self._merchants.get(tx, merchant_id, for_update=True)
            if merchant is None:
                raise NotFound(f"No such merchant: '{merchant_id}'.", field="id")
            if merchant.status is MerchantStatus.CLOSED:
                raise InvalidState("A closed merchant cannot get a bank account.", field="id")
            version, key = await self._dek_for_write(tx, merchant_id)
            record_id = new_id("ba")
            nonce, ciphertext = self._cipher.encrypt(
                key,
                bank_account_payload(account),
                aad_for(merchant_id, RecordKind.BANK_ACCOUNT, record_id, version),
            )
            if account.iban is not None:
                display = {"iban": mask_tail(account.iban.reveal())}
            else:
                routing = present(account.routing_number, "a US account has a routing number")
                number = present(account.account_number, "a US account has an account number")
                display = {
                    "routing_number": routing.reveal(),
                    "account_number": mask_tail(number.reveal()),
                }
            row = await self._repo.upsert_bank_account(
                tx,
                {
                    "merchant_id": merchant_id,
                    "id": record_id,
                    "country": account.country,
                    "currency": account.currency,
                    "account_holder": account.account_holder,
                    "scheme": account.scheme,
                    "bic": account.bic,
                    "display": display,
                    "dek_version": version,
                    "nonce": nonce,
                    "ciphertext": ciphertext,
                },
            )
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="bank_account.updated",
                resource=merchant_id,
                origin=origin,
                details={"bank_account": record_id, "scheme": account.scheme},
            )
        return _bank_view(row)

    async def get_bank_account(self, actor: Principal, merchant_id: str) -> BankAccountView:
        actor.require(Permission.MERCHANTS_READ)
        parse_id(merchant_id, "mer", field="id")
        async with self._uow.transaction() as tx:
            row = await self._repo.get_bank_account(tx, merchant_id)
        if row is None:
            raise NotFound("This merchant has no bank account.", field="id")
        return _bank_view(row)

    async def bank_account_for_payout(
        self, tx: Transaction, merchant_id: str
    ) -> BankAccount | None:
        """The decrypted payout destination (settlement writes it into payout files)."""
        row = await self._repo.get_bank_account(tx, merchant_id)
        if row is None:
            return None
        version = int(row["dek_version"])
        key = await self._dek_for_read(tx, merchant_id, version, row["id"])
        payload = self._decrypt(key, row, RecordKind.BANK_ACCOUNT, row["id"], merchant_id, version)
        return bank_account_from_payload(
            payload,
            country=row["country"],
            currency=row["currency"],
            account_holder=row["account_holder"],
            bic=row["bic"],
        )

    # --- rotation ----------------------------------------------------------------------------

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
        async with self._uow.transaction() as tx:
            await self._repo.lock_rotation_start(tx, "kek")
            open_row = await self._repo.open_rotation(tx, "kek", None)
            if open_row is not None:
                rotation_id, target, resumed = open_row["id"], str(open_row["target"]), True
            else:
                target = await self._provider.rotate_kek()
                rotation_id, resumed = new_id("rot"), False
                await self._repo.start_rotation(tx, rotation_id, "kek", None, target, actor.actor)
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
            async with self._uow.transaction() as tx:
                rows = await self._repo.deks_not_under(tx, target, batch_size)
                for row in rows:
                    context = dek_context(row["merchant_id"], int(row["version"]))
                    plaintext = await self._provider.unwrap(
                        bytes(row["wrapped_key"]), row["kek_id"], context
                    )
                    wrapped, kek_id = await self._provider.wrap(plaintext, context)
                    if kek_id != target:
                        raise InvalidState("The current KEK changed during the rotation.")
                    await self._repo.rewrap_dek(
                        tx, row["merchant_id"], int(row["version"]), wrapped, kek_id
                    )
                await self._repo.progress_rotation(tx, rotation_id, len(rows))
            processed += len(rows)
            batches += 1
            if len(rows) < batch_size:
                break
        else:
            return RotationResult(rotation_id, "kek", target, resumed, processed, False)
        async with self._uow.transaction() as tx:
            if await self._repo.deks_not_under(tx, target, 1):
                return RotationResult(rotation_id, "kek", target, resumed, processed, False)
            references = await self._repo.kek_references(tx)
            retired: list[str] = []
            for kek_id in await self._provider.kek_ids():
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
        return RotationResult(rotation_id, "kek", target, resumed, processed, True, tuple(retired))

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
        async with self._uow.transaction() as tx:
            if await self._merchants.get(tx, merchant_id) is None:
                raise NotFound(f"No such merchant: '{merchant_id}'.", field="merchant")
            deks = await self._repo.lock_merchant_deks(tx, merchant_id)
            open_row = await self._repo.open_rotation(tx, "dek", merchant_id)
            if open_row is not None:
                rotation_id, target, resumed = open_row["id"], int(open_row["target"]), True
            else:
                if deks and all(r["status"] == "destroyed" for r in deks):
                    raise CardDataDestroyed("This merchant's card keys have been destroyed.")
                target = max((int(r["version"]) for r in deks), default=0) + 1
                _, wrapped, kek_id = await self._provider.generate_data_key(
                    dek_context(merchant_id, target)
                )
                await self._repo.retire_deks_except(tx, merchant_id, target)
                await self._repo.insert_dek(
                    tx, merchant_id, target, wrapped, kek_id, self._provider.name
                )
                rotation_id, resumed = new_id("rot"), False
                await self._repo.start_rotation(
                    tx, rotation_id, "dek", merchant_id, str(target), actor.actor
                )
                await self._auditor.record(
                    tx,
                    actor=actor.actor,
                    event_type="vault.dek_rotation_started",
                    resource=merchant_id,
                    origin=origin,
                    details={"rotation": rotation_id, "dek_version": target},
                )
        processed, batches = 0, 0
        while max_batches is None or batches < max_batches:
            async with self._uow.transaction() as tx:
                new_key = await self._dek_for_read(tx, merchant_id, target, rotation_id)
                rows = await self._repo.cards_to_reencrypt(tx, merchant_id, target, batch_size)
                for row in rows:
                    old = int(row["dek_version"])
                    old_key = await self._dek_for_read(tx, merchant_id, old, row["id"])
                    plaintext = self._decrypt(
                        old_key, row, RecordKind.CARD, row["id"], merchant_id, old
                    )
                    nonce, ciphertext = self._cipher.encrypt(
                        new_key, plaintext, aad_for(merchant_id, RecordKind.CARD, row["id"], target)
                    )
                    await self._repo.update_card_ciphertext(
                        tx, row["id"], target, nonce, ciphertext
                    )
                await self._repo.progress_rotation(tx, rotation_id, len(rows))
            processed += len(rows)
            batches += 1
            if len(rows) < batch_size:
                break
        else:
            return RotationResult(rotation_id, "dek", str(target), resumed, processed, False)
        async with self._uow.transaction() as tx:
            new_key = await self._dek_for_read(tx, merchant_id, target, rotation_id)
            account = await self._repo.bank_account_to_reencrypt(tx, merchant_id, target)
            if account is not None:
                old = int(account["dek_version"])
                old_key = await self._dek_for_read(tx, merchant_id, old, account["id"])
                plaintext = self._decrypt(
                    old_key, account, RecordKind.BANK_ACCOUNT, account["id"], merchant_id, old
                )
                nonce, ciphertext = self._cipher.encrypt(
                    new_key,
                    plaintext,
                    aad_for(merchant_id, RecordKind.BANK_ACCOUNT, account["id"], target),
                )
                await self._repo.update_bank_account_ciphertext(
                    tx, merchant_id, target, nonce, ciphertext
                )
                processed += 1
            if await self._repo.cards_to_reencrypt(tx, merchant_id, target, 1):
                return RotationResult(rotation_id, "dek", str(target), resumed, processed, False)
            destroyed = await self._repo.destroy_unreferenced_retired_deks(tx, merchant_id)
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
        return RotationResult(rotation_id, "dek", str(target), resumed, processed, True)

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
                    "id": r["id"],
                    "kind": r["kind"],
                    "merchant": r["merchant_id"],
                    "target": r["target"],
                    "done": int(r["done_count"]),
                }
                for r in running
            ],
        }

    # --- crypto-shredding --------------------------------------------------------------------

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
        self._cache.evict_merchant(merchant_id)
        return destroyed
