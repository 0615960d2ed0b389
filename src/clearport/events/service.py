"""Reading events: a merchant sees its own, an operator with `merchants.read` everyone's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clearport.access.domain import Permission, Principal
from clearport.core.errors import NotFound
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import UnitOfWork
from clearport.events.domain import Event
from clearport.events.ports import EventStore


class EventQueries:
    def __init__(self, uow: UnitOfWork, store: EventStore) -> None:
        self._uow = uow
        self._store = store

    async def get(self, principal: Principal, event_id: str) -> Event:
        scope = principal.merchant_scope(Permission.MERCHANTS_READ)
        async with self._uow.autocommit() as tx:
            event = await self._store.get(tx, event_id, merchant_id=scope)
        if event is None:
            raise NotFound(f"No such event: '{event_id}'.", field="id")
        return event

    async def list(
        self, principal: Principal, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[Event]:
        scope = principal.merchant_scope(Permission.MERCHANTS_READ)
        async with self._uow.autocommit() as tx:
            return await self._store.list(tx, scope, page, filters)
