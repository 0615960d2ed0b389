"""Reading runs, settlements, their items and payouts: operators see all, a merchant its own."""

from __future__ import annotations

from clearport.access.domain import Permission, Principal
from clearport.core.errors import InvalidRequest, NotFound
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import UnitOfWork
from clearport.settlement.domain import (
    ItemLine,
    Payout,
    PayoutFile,
    RunProgress,
    Settlement,
    SettlementRun,
)
from clearport.settlement.ports import SettlementStore


def _scope(actor: Principal) -> str | None:
    """The merchant whose records `actor` may read; None for an operator who may read all."""
    if actor.merchant_id is not None:
        return actor.merchant_id
    actor.require(Permission.FINANCE_READ)
    return None


class SettlementQueries:
    def __init__(self, uow: UnitOfWork, store: SettlementStore) -> None:
        self._uow = uow
        self._store = store

    async def get_run(self, actor: Principal, run_id: str) -> SettlementRun:
        actor.require(Permission.FINANCE_READ)
        async with self._uow.transaction() as tx:
            run = await self._store.get_run(tx, run_id)
        if run is None:
            raise NotFound("No such settlement run.", field="id")
        return run

    async def list_runs(
        self, actor: Principal, page: PageRequest
    ) -> tuple[Page[RunProgress], list[PayoutFile]]:
        """Runs with their progress, and as many of the latest payout files."""
        actor.require(Permission.FINANCE_READ)
        async with self._uow.transaction() as tx:
            runs = await self._store.list_runs(tx, page)
            files = await self._store.recent_payout_files(tx, page.limit)
        return runs, files

    async def get_settlement(self, actor: Principal, settlement_id: str) -> Settlement:
        merchant = _scope(actor)
        async with self._uow.transaction() as tx:
            s = await self._store.get_settlement(tx, settlement_id)
        if s is None or (merchant is not None and s.merchant_id != merchant):
            raise NotFound("No such settlement.", field="id")
        return s

    async def list_settlements(self, actor: Principal, page: PageRequest) -> Page[Settlement]:
        merchant = _scope(actor)
        async with self._uow.transaction() as tx:
            return await self._store.list_settlements(tx, page, merchant, None)

    async def list_items(
        self, actor: Principal, settlement_id: str, page: PageRequest
    ) -> Page[ItemLine]:
        await self.get_settlement(actor, settlement_id)
        async with self._uow.transaction() as tx:
            cursor_at = None
            if page.cursor is not None:
                cursor_at = await self._store.item_created_at(tx, settlement_id, page.cursor)
                if cursor_at is None:
                    after = page.starting_after is not None
                    raise InvalidRequest(
                        f"'{{field}}' is not an item of settlement {settlement_id}.",
                        field="starting_after" if after else "ending_before",
                    )
            return await self._store.list_items(tx, settlement_id, page, cursor_at)

    async def get_payout(self, actor: Principal, payout_id: str) -> Payout:
        merchant = _scope(actor)
        async with self._uow.transaction() as tx:
            p = await self._store.get_payout(tx, payout_id)
        if p is None or (merchant is not None and p.merchant_id != merchant):
            raise NotFound("No such payout.", field="id")
        return p

    async def list_payouts(
        self, actor: Principal, page: PageRequest, status: str | None = None
    ) -> Page[Payout]:
        merchant = _scope(actor)
        async with self._uow.transaction() as tx:
            return await self._store.list_payouts(tx, page, merchant, status)
