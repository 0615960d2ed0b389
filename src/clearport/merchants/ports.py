"""Merchant persistence."""

from __future__ import annotations

from typing import Protocol

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.merchants.domain import Merchant


class MerchantRepository(Protocol):
    async def insert(self, tx: Transaction, merchant: Merchant) -> None: ...
    async def get(
        self, tx: Transaction, merchant_id: str, *, for_update: bool = False
    ) -> Merchant | None: ...
    async def list(self, tx: Transaction, page: PageRequest) -> Page[Merchant]: ...
    async def update(self, tx: Transaction, merchant: Merchant) -> None: ...
