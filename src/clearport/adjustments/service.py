"""Adjustments: finance (audited, idempotent) credits or debits a merchant in a currency it
settles; one transaction writes the adjustment, its ledger entry, its transaction-log entry,
the audit record and the stored response."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clearport.access.domain import Origin, Permission, Principal
from clearport.adjustments.domain import (
    Adjustment,
    adjustment_transfer,
    check_reason,
    txlog_entry,
)
from clearport.adjustments.ports import AdjustmentStore, Representation
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import InvalidRequest, NotFound
from clearport.core.ids import new_id, parse_id
from clearport.core.money import MAX_AMOUNT_MINOR, parse_currency
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction, UnitOfWork
from clearport.idempotency.service import IdempotencyClaim, IdempotencyService
from clearport.ledger.service import LedgerService
from clearport.merchants.ports import MerchantRepository
from clearport.txlog.ports import TxlogStore


class AdjustmentService:
    def __init__(
        self,
        uow: UnitOfWork,
        store: AdjustmentStore,
        merchants: MerchantRepository,
        ledger: LedgerService,
        txlog: TxlogStore,
        idempotency: IdempotencyService,
        auditor: Auditor,
        shown: Representation,
        clock: Clock,
        *,
        max_amount_minor: Mapping[str, int],
    ) -> None:
        self._uow = uow
        self._store = store
        self._merchants = merchants
        self._ledger = ledger
        self._txlog = txlog
        self._idempotency = idempotency
        self._auditor = auditor
        self._shown = shown
        self._clock = clock
        self._max_amount_minor = max_amount_minor

    async def create(
        self,
        actor: Principal,
        origin: Origin,
        merchant_id: str,
        amount: int,
        currency: str,
        reason: str,
        claim: IdempotencyClaim | None = None,
    ) -> Adjustment:
        """Credit (`amount` > 0) or debit the merchant. The currency must be one the merchant
        settles: its default currency or one it has balances in."""
        actor.require(Permission.FINANCE_WRITE)
        parse_id(merchant_id, "mer", field="merchant")
        parse_currency(currency)
        check_reason(reason)
        cap = min(self._max_amount_minor.get(currency, MAX_AMOUNT_MINOR), MAX_AMOUNT_MINOR)
        if type(amount) is not int or amount == 0 or abs(amount) > cap:
            raise InvalidRequest(
                f"'{{field}}' must be a non-zero integer of at most {cap} minor units in "
                "magnitude.",
                code="amount_too_large" if type(amount) is int and amount else None,
                field="amount",
            )
        async with self._uow.transaction() as tx:
            adjustment = await self.create_in(
                tx, actor, origin, merchant_id, amount, currency, reason
            )
            if claim is not None:
                body = self._shown.response_body(self._shown.adjustment(adjustment))
                await self._idempotency.complete_in(tx, claim, 201, body)
        return adjustment

    async def create_in(
        self,
        tx: Transaction,
        actor: Principal,
        origin: Origin,
        merchant_id: str,
        amount: int,
        currency: str,
        reason: str,
    ) -> Adjustment:
        """`create` inside the caller's transaction (reconciliation posts one with the
        exception it resolves); the arguments are checked as `create` checks them."""
        actor.require(Permission.FINANCE_WRITE)
        check_reason(reason)
        now = self._clock.now()
        adjustment_id = new_id("adj")
        transfer = adjustment_transfer(adjustment_id, merchant_id, amount, currency)
        merchant = await self._merchants.get(tx, merchant_id)
        if merchant is None:
            raise NotFound(f"No such merchant: '{merchant_id}'.", field="merchant")
        balances = await self._ledger.balances(tx, merchant_id)
        settled = {merchant.default_currency} | {
            c for by_currency in balances.values() for c in by_currency
        }
        if currency not in settled:
            raise InvalidRequest(
                f"Merchant {merchant_id} does not settle '{currency}' (it settles "
                f"{', '.join(sorted(settled))}).",
                code="currency_not_settled",
                field="currency",
            )
        posted = await self._ledger.post(tx, [transfer])
        adjustment = Adjustment(
            id=adjustment_id,
            merchant_id=merchant_id,
            amount=amount,
            currency=currency,
            reason=reason,
            balance_transaction=posted[0].txn_id,
            created_by=actor.actor,
            created_at=now,
        )
        await self._store.insert(tx, adjustment)
        await self._txlog.append(tx, [txlog_entry(adjustment, actor.actor)])
        await self._auditor.record(
            tx,
            actor=actor.actor,
            event_type="adjustment.created",
            resource=adjustment_id,
            origin=origin,
            details={"merchant": merchant_id, "amount": amount, "currency": currency},
        )
        return adjustment

    async def get(self, actor: Principal, adjustment_id: str) -> Adjustment:
        scope = actor.merchant_scope(Permission.FINANCE_READ)
        async with self._uow.autocommit() as tx:
            found = await self._store.get(tx, adjustment_id, merchant_id=scope)
        if found is None:
            raise NotFound(f"No such adjustment: '{adjustment_id}'.", field="id")
        return found

    async def list(
        self, actor: Principal, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[Adjustment]:
        scope = actor.merchant_scope(Permission.FINANCE_READ)
        async with self._uow.autocommit() as tx:
            return await self._store.list(tx, scope, page, filters)
