"""Card tokens: tokenize a card, read a token's display, reveal the number for a connector."""

from __future__ import annotations

import json

from clearport.access.domain import Origin, Principal
from clearport.audit.service import Auditor
from clearport.bins.ports import BinLookup
from clearport.core.clock import Clock
from clearport.core.errors import Field, NotFound, PermissionDenied, present
from clearport.core.ids import is_id, new_id
from clearport.core.sensitive import SensitiveStr
from clearport.core.uow import Transaction, UnitOfWork
from clearport.idempotency.service import IdempotencyClaim, IdempotencyService
from clearport.merchants.domain import MerchantStatus
from clearport.merchants.ports import MerchantRepository
from clearport.vault.cards import (
    CardInput,
    StoredCard,
    bin_of,
    last4_of,
    normalize_number,
    validate_card,
)
from clearport.vault.data_keys import DataKeys
from clearport.vault.domain import CardRecord, RecordKind, fingerprint
from clearport.vault.ports import KeyProvider, VaultRepository

INTERNAL_ORIGIN = Origin("internal")


class CardTokens:
    def __init__(
        self,
        uow: UnitOfWork,
        repo: VaultRepository,
        merchants: MerchantRepository,
        data_keys: DataKeys,
        provider: KeyProvider,
        auditor: Auditor,
        clock: Clock,
        bins: BinLookup | None,
        idempotency: IdempotencyService | None = None,
    ) -> None:
        self._bins = bins
        self._idempotency = idempotency
        self._uow = uow
        self._repo = repo
        self._merchants = merchants
        self._data_keys = data_keys
        self._provider = provider
        self._auditor = auditor
        self._clock = clock

    async def _require_usable_merchant(self, tx: Transaction, merchant_id: str) -> None:
        merchant = await self._merchants.get(tx, merchant_id)
        if merchant is None:
            raise NotFound("No such merchant.", field="merchant")
        if merchant.status is not MerchantStatus.ACTIVE:
            raise PermissionDenied(
                "This merchant is not active and cannot store cards.", code="merchant_inactive"
            )

    async def create_token(
        self, actor: Principal, card: CardInput, claim: IdempotencyClaim | None = None
    ) -> StoredCard:
        """POST /v1/tokens: a merchant key stores a card. Under an Idempotency-Key the key is
        claimed first in the token's own transaction, bound to the token (decision 0912): a
        retry after a crash answers with that token instead of storing the card twice."""
        merchant_id = actor.require_merchant()
        if claim is not None and claim.recovered_resource is not None:
            return await self.read_token(actor, claim.recovered_resource)
        validate_card(card, self._clock.now().date())  # fail before opening a transaction
        token_id = new_id("tok")
        try:
            async with self._uow.transaction() as tx:
                if claim is not None:
                    idempotency = present(self._idempotency, "tokens are wired to idempotency")
                    await idempotency.claim_in(tx, claim, token_id)
                await self._require_usable_merchant(tx, merchant_id)
                return await self.tokenize(tx, merchant_id, card, token_id=token_id)
        except BaseException:
            if claim is not None:
                claim.rolled_back()
            raise

    async def tokenize(
        self, tx: Transaction, merchant_id: str, card: CardInput, *, token_id: str | None = None
    ) -> StoredCard:
        """Validate, encrypt and insert a token row inside the caller's transaction."""
        now = self._clock.now()
        brand = validate_card(card, now.date())
        digits = normalize_number(card.number.reveal())
        token_id = token_id or new_id("tok")
        payload = json.dumps(
            {"number": digits, "holder_name": card.holder_name}, separators=(",", ":")
        ).encode()
        sealed = await self._data_keys.encrypt(tx, merchant_id, RecordKind.CARD, token_id, payload)
        issuer = None if self._bins is None else await self._bins.lookup(digits)
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
            funding=None if issuer is None else issuer.funding,
            category=None if issuer is None else issuer.category,
            issuer_country=None if issuer is None else issuer.issuer_country,
        )
        await self._repo.insert_card(tx, CardRecord(card=stored, sealed=sealed))
        return stored

    async def _record(
        self, tx: Transaction, merchant_id: str, token_id: str, field: Field | str
    ) -> CardRecord:
        record = await self._repo.get_card(tx, token_id) if is_id(token_id, "tok") else None
        if record is None or record.card.merchant_id != merchant_id:
            raise NotFound(f"No such token: '{token_id}'.", field=field)
        return record

    async def get_card(
        self, tx: Transaction, merchant_id: str, token_id: str, *, field: Field | str = "token"
    ) -> StoredCard:
        return (await self._record(tx, merchant_id, token_id, field)).card

    async def read_token(self, actor: Principal, token_id: str) -> StoredCard:
        """GET /v1/tokens/{id}: the display, never the number."""
        merchant_id = actor.require_merchant()
        async with self._uow.transaction() as tx:
            return await self.get_card(tx, merchant_id, token_id, field="id")

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
        record = await self._record(tx, merchant_id, token_id, ("source", "token"))
        stored = record.card
        data = json.loads(
            await self._data_keys.decrypt(
                tx, stored.merchant_id, RecordKind.CARD, stored.token_id, record.sealed
            )
        )
        card = CardInput(
            number=SensitiveStr(data["number"]),
            exp_month=stored.exp_month,
            exp_year=stored.exp_year,
            holder_name=data.get("holder_name"),
        )
        await self._auditor.record(
            tx,
            actor=f"merchant:{merchant_id}",
            event_type="card.detokenized",
            resource=payment_id,
            origin=INTERNAL_ORIGIN,
            details={"token": token_id, "connector": connector},
        )
        return card
