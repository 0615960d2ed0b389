"""Ledger use cases: post linked groups of transfers, expire holds, read balances.

`post` runs inside the caller's transaction (a capture writes its payment row and its ledger
transfers atomically). See `clearport.ledger.domain` for the model and direction convention.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from clearport.access.domain import Permission, Principal
from clearport.core.clock import Clock
from clearport.core.errors import InvalidRequest, NotFound
from clearport.core.ids import parse_id
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction, UnitOfWork
from clearport.ledger.domain import (
    BALANCE_TRANSACTION_TYPES,
    MAX_BATCH,
    Account,
    AccountKind,
    AccountRef,
    BalanceTransaction,
    PostResult,
    TransferRequest,
    merchant_balances,
    new_txn_ids,
    validate_batch,
)
from clearport.ledger.ports import LedgerStore, Settlements


class NothingSettled:
    """`Settlements` before settlement exists (a ledger on its own, in tests of the ledger)."""

    async def settled_at(self, tx: Transaction, sources: Sequence[str]) -> dict[str, datetime]:
        return {}

    async def carried(self, tx: Transaction, merchant_id: str) -> dict[str, int]:
        return {}


class LedgerService:
    def __init__(
        self,
        uow: UnitOfWork,
        store: LedgerStore,
        clock: Clock,
        settlements: Settlements | None = None,
    ) -> None:
        self._uow = uow
        self._store = store
        self._clock = clock
        self._settlements = settlements or NothingSettled()

    async def post(self, tx: Transaction, transfers: Sequence[TransferRequest]) -> list[PostResult]:
        """Post one linked group: all transfers are written or none (a specific error)."""
        validate_batch(transfers)
        txn_ids = new_txn_ids(len(transfers))
        return await self._store.post(tx, transfers, txn_ids)

    async def expire(
        self, tx: Transaction, *, now: datetime | None = None, limit: int = 1000
    ) -> int:
        """Release holds whose `expires_at` has passed; returns how many were expired."""
        limit = max(1, min(limit, MAX_BATCH))
        at = now or self._clock.now()
        results = await self._store.expire(tx, at, new_txn_ids(limit))
        return sum(1 for r in results if r.status == "created")

    async def balances(self, tx: Transaction, owner: str) -> dict[AccountKind, dict[str, int]]:
        """Posted balance (normal side) per account kind and currency."""
        out: dict[AccountKind, dict[str, int]] = {}
        for account in await self._store.accounts(tx, owner):
            out.setdefault(account.kind, {})[account.currency] = account.balance
        return out

    async def account(self, tx: Transaction, ref: AccountRef) -> Account | None:
        return await self._store.account(tx, ref)

    async def account_as_of(self, tx: Transaction, ref: AccountRef, at: datetime) -> Account:
        """The account's totals after every journal posted at or before `at` (one index probe
        per row of the account: one, or one per shard of a platform account)."""
        as_of = await self._store.account_as_of(tx, ref, at)
        if as_of is None:
            raise NotFound("No such ledger account.", code="account_not_found")
        return as_of

    # --- API reads -----------------------------------------------------------------------

    async def _merchant_of(self, tx: Transaction, actor: Principal, merchant: str | None) -> str:
        """Merchants read their own; operators with finance.read name one with `merchant`."""
        if merchant is not None:
            parse_id(merchant, "mer", field="merchant")
        if actor.merchant_id is not None:
            if merchant is not None and merchant != actor.merchant_id:
                raise NotFound("No such merchant.", field="merchant")
            return actor.merchant_id
        actor.require(Permission.FINANCE_READ)
        if merchant is None:
            raise InvalidRequest("Operators must pass 'merchant'.", field="merchant")
        if not await self._store.merchant_exists(tx, merchant):
            raise NotFound("No such merchant.", field="merchant")
        return merchant

    async def merchant_balance(
        self, actor: Principal, merchant: str | None
    ) -> dict[AccountKind, dict[str, int]]:
        """The balance as the API shows it: a carried deficit in `available` (decision 0701).
        Read in one snapshot, so the accounts and the settlements that carry a deficit agree."""
        async with self._uow.snapshot() as tx:
            merchant_id = await self._merchant_of(tx, actor, merchant)
            return merchant_balances(
                await self.balances(tx, merchant_id),
                await self._settlements.carried(tx, merchant_id),
            )

    async def list_balance_transactions(
        self,
        actor: Principal,
        merchant: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[BalanceTransaction]:
        async with self._uow.snapshot() as tx:
            merchant_id = await self._merchant_of(tx, actor, merchant)
            listed = await self._store.balance_transactions(
                tx, merchant_id, page, {**filters, "types": BALANCE_TRANSACTION_TYPES}
            )
            # Money in pending becomes available when its source is settled.
            sources = [t.source for t in listed.data if t.status == "pending" and t.source]
            settled = await self._settlements.settled_at(tx, sources) if sources else {}
        return Page(
            [
                t.settled(settled[t.source]) if t.status == "pending" and t.source in settled else t
                for t in listed.data
            ],
            listed.has_more,
        )
