"""An in-memory card vault for the fast test tier: what payments asks of the vault
(`payments.ports.CardVault`), without encryption. Card data is kept in memory only, behind
`SensitiveStr`, and the fingerprint is the real keyed one under a fixed test key."""

from __future__ import annotations

import copy
from collections import Counter
from typing import cast

from clearport.core.clock import Clock
from clearport.core.errors import Field, NotFound
from clearport.core.ids import is_id, new_id
from clearport.core.uow import Transaction
from clearport.vault.cards import CardInput, bin_of, last4_of, normalize_number, validate_card
from clearport.vault.domain import fingerprint
from clearport.vault.service import StoredCard

_FINGERPRINT_KEY = b"clearport-fake-vault-fingerprint"


class FakeCardVault:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.cards: dict[str, tuple[StoredCard, CardInput]] = {}
        self.detokenized: Counter[str] = Counter()  # token -> reveals for a connector

    def snapshot(self) -> object:
        return copy.copy(self.cards), copy.copy(self.detokenized)

    def restore(self, snapshot: object) -> None:
        cards, detokenized = cast(
            tuple[dict[str, tuple[StoredCard, CardInput]], Counter[str]], snapshot
        )
        self.cards, self.detokenized = copy.copy(cards), copy.copy(detokenized)

    async def tokenize(self, tx: Transaction, merchant_id: str, card: CardInput) -> StoredCard:
        now = self._clock.now()
        brand = validate_card(card, now.date())
        digits = normalize_number(card.number.reveal())
        stored = StoredCard(
            token_id=new_id("tok"),
            merchant_id=merchant_id,
            brand=brand,
            bin=bin_of(digits),
            last4=last4_of(digits),
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            fingerprint=fingerprint(_FINGERPRINT_KEY, merchant_id, digits),
            created_at=now,
        )
        self.cards[stored.token_id] = (stored, card)
        return stored

    def _card(
        self, merchant_id: str, token_id: str, field: Field | str
    ) -> tuple[StoredCard, CardInput]:
        found = self.cards.get(token_id) if is_id(token_id, "tok") else None
        if found is None or found[0].merchant_id != merchant_id:
            raise NotFound(f"No such token: '{token_id}'.", field=field)
        return found

    async def get_card(
        self, tx: Transaction, merchant_id: str, token_id: str, *, field: Field | str = "token"
    ) -> StoredCard:
        return self._card(merchant_id, token_id, field)[0]

    async def reveal_for_connector(
        self,
        tx: Transaction,
        merchant_id: str,
        token_id: str,
        *,
        payment_id: str,
        connector: str,
    ) -> CardInput:
        card = self._card(merchant_id, token_id, ("source", "token"))[1]
        self.detokenized[token_id] += 1
        return card
