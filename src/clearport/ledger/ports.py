"""Ledger persistence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.ledger import domain as ledger


class Settlements(Protocol):
    """What settlement (a feature above the ledger) tells it: when a source's money became
    available, and the deficits it carries (settlement's store implements it)."""

    async def settled_at(self, tx: Transaction, sources: Sequence[str]) -> dict[str, datetime]:
        """For each of `sources` a settlement has settled (or that is a settlement: what it
        posted is settled by itself), when."""
        ...

    async def carried(self, tx: Transaction, merchant_id: str) -> dict[str, int]:
        """The deficit the merchant's settlements carry forward, per currency (<= 0)."""
        ...


class LedgerStore(Protocol):
    """Ledger persistence. `post` writes one linked group in one round trip, or nothing."""

    async def post(
        self,
        tx: Transaction,
        transfers: Sequence[ledger.TransferRequest],
        txn_ids: Sequence[str],
        *,
        now: datetime | None = None,
    ) -> list[ledger.PostResult]: ...
    async def expire(
        self, tx: Transaction, now: datetime, txn_ids: Sequence[str]
    ) -> list[ledger.PostResult]: ...
    async def accounts(self, tx: Transaction, owner: str) -> list[ledger.Account]: ...
    async def account(self, tx: Transaction, ref: ledger.AccountRef) -> ledger.Account | None: ...
    async def account_as_of(
        self, tx: Transaction, ref: ledger.AccountRef, at: datetime
    ) -> ledger.Account | None: ...
    async def balance_transactions(
        self, tx: Transaction, merchant_id: str, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[ledger.BalanceTransaction]: ...
    async def merchant_exists(self, tx: Transaction, merchant_id: str) -> bool: ...
