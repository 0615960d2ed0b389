"""Reading payments and refunds: a merchant its own, an operator with `merchants.read` all."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clearport.access.domain import Permission, Principal
from clearport.core.errors import NotFound
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import UnitOfWork
from clearport.payments.attempts import Attempt
from clearport.payments.domain import Payment, Refund
from clearport.payments.ports import PaymentStore


class PaymentQueries:
    def __init__(self, uow: UnitOfWork, store: PaymentStore) -> None:
        self._uow = uow
        self._store = store

    async def get(self, principal: Principal, payment_id: str) -> Payment:
        scope = principal.merchant_scope(Permission.MERCHANTS_READ)
        async with self._uow.autocommit() as tx:
            payment = await self._store.get_payment(tx, payment_id, merchant_id=scope)
        if payment is None:
            raise NotFound(f"No such payment: '{payment_id}'.", field="id")
        return payment

    async def list(
        self, principal: Principal, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[Payment]:
        scope = principal.merchant_scope(Permission.MERCHANTS_READ)
        async with self._uow.autocommit() as tx:
            return await self._store.list_payments(tx, scope, page, filters)

    async def attempts(
        self, principal: Principal, payment_id: str, limit: int = 100
    ) -> Sequence[Attempt]:
        """Every call made for the payment: its authorization and failovers, captures, voids,
        refunds and reversals (the console's payment page)."""
        payment = await self.get(principal, payment_id)
        async with self._uow.autocommit() as tx:
            return await self._store.attempts_of(tx, payment.id, limit)

    async def get_refund(self, principal: Principal, refund_id: str) -> Refund:
        scope = principal.merchant_scope(Permission.MERCHANTS_READ)
        async with self._uow.autocommit() as tx:
            refund = await self._store.get_refund(tx, refund_id, merchant_id=scope)
        if refund is None:
            raise NotFound(f"No such refund: '{refund_id}'.", field="id")
        return refund

    async def list_refunds(
        self, principal: Principal, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[Refund]:
        scope = principal.merchant_scope(Permission.MERCHANTS_READ)
        async with self._uow.autocommit() as tx:
            return await self._store.list_refunds(tx, scope, page, filters)
