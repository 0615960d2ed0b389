"""Merchant persistence: the merchants and their payment settings."""

from __future__ import annotations

from typing import Protocol

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.merchants.domain import Merchant, MerchantGate


class MerchantRepository(Protocol):
    async def insert(self, tx: Transaction, merchant: Merchant) -> None: ...
    async def get(
        self, tx: Transaction, merchant_id: str, *, for_update: bool = False
    ) -> Merchant | None: ...
    async def list(self, tx: Transaction, page: PageRequest) -> Page[Merchant]: ...
    async def update(self, tx: Transaction, merchant: Merchant) -> None: ...


class MerchantGates(Protocol):
    """What payments asks of merchants before a payment starts."""

    async def merchant_gate(self, tx: Transaction, merchant_id: str) -> MerchantGate | None:
        """The merchant's status and require_cvc in one read; None if no such merchant."""
        ...


class PaymentSettingsRepository(MerchantGates, Protocol):
    """Per-merchant payment settings (`merchant_payment_settings`); a merchant without a row
    has the defaults (require_cvc false)."""

    async def require_cvc(self, tx: Transaction, merchant_id: str) -> bool: ...
    async def set_require_cvc(self, tx: Transaction, merchant_id: str, value: bool) -> None: ...
