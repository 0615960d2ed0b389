"""In-memory merchants and payment settings for the fast test tier."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

from clearport.core.ids import new_id
from clearport.core.pagination import Page, PageRequest, paginate
from clearport.core.uow import Transaction
from clearport.merchants.domain import (
    DEFAULT_PAYOUT_DELAY_DAYS,
    DEFAULT_PRICING,
    DEFAULT_RESERVE,
    Merchant,
    MerchantGate,
    MerchantStatus,
)


class FakeMerchantRepository:
    """A `MerchantRepository` and a `PaymentSettingsRepository` over two dicts."""

    def __init__(self) -> None:
        self.merchants: dict[str, Merchant] = {}
        self.require_cvc_of: dict[str, bool] = {}

    def snapshot(self) -> object:
        return copy.deepcopy((self.merchants, self.require_cvc_of))

    def restore(self, snapshot: object) -> None:
        merchants, settings = copy.deepcopy(
            cast(tuple[dict[str, Merchant], dict[str, bool]], snapshot)
        )
        self.merchants, self.require_cvc_of = merchants, settings

    def add(
        self, *, status: MerchantStatus = MerchantStatus.ACTIVE, require_cvc: bool = False
    ) -> Merchant:
        """A merchant as onboarding leaves it (test setup, outside any transaction)."""
        merchant = Merchant(
            id=new_id("mer"),
            name="Test Shop",
            country="US",
            mcc="5999",
            default_currency="usd",
            status=status,
            pricing=dict(DEFAULT_PRICING),
            payout_delay_days=DEFAULT_PAYOUT_DELAY_DAYS,
            reserve=dict(DEFAULT_RESERVE),
            metadata={},
            created_at=datetime.now(UTC),
        )
        self.merchants[merchant.id] = merchant
        if require_cvc:
            self.require_cvc_of[merchant.id] = True
        return merchant

    async def insert(self, tx: Transaction, merchant: Merchant) -> None:
        self.merchants[merchant.id] = replace(merchant)

    async def get(
        self, tx: Transaction, merchant_id: str, *, for_update: bool = False
    ) -> Merchant | None:
        merchant = self.merchants.get(merchant_id)
        return None if merchant is None else replace(merchant)

    async def list(self, tx: Transaction, page: PageRequest) -> Page[Merchant]:
        return paginate(self.merchants.values(), page, lambda m: m.id)

    async def update(self, tx: Transaction, merchant: Merchant) -> None:
        self.merchants[merchant.id] = replace(merchant)

    async def merchant_gate(self, tx: Transaction, merchant_id: str) -> MerchantGate | None:
        merchant = self.merchants.get(merchant_id)
        if merchant is None:
            return None
        return MerchantGate(merchant.status, self.require_cvc_of.get(merchant_id, False))

    async def require_cvc(self, tx: Transaction, merchant_id: str) -> bool:
        return self.require_cvc_of.get(merchant_id, False)

    async def set_require_cvc(self, tx: Transaction, merchant_id: str, value: bool) -> None:
        self.require_cvc_of[merchant_id] = value
