"""Events: written by the features in the transaction of their change (`Outbox`), read by
merchants (their own) and operators with `merchants.read` (everyone's, platform events too)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clearport.access.domain import Permission, Principal
from clearport.core.clock import Clock
from clearport.core.errors import NotFound
from clearport.core.ids import new_ids
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction, UnitOfWork
from clearport.events.domain import Event, new_event
from clearport.events.ports import EventStore


class Outbox:
    """The one way a feature records what happened: `emit` inside the transaction that makes
    the change, so the event exists exactly when the change does (the webhook relay takes it
    from there). `shown` is the object as the API shows it right after the change."""

    def __init__(self, store: EventStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def emit(
        self, tx: Transaction, type_: str, shown: dict[str, Any], *, merchant_id: str | None
    ) -> Event:
        event = new_event(type_, shown, merchant_id=merchant_id, at=self._clock.now())
        await self._store.insert(tx, [event])
        return event

    async def emit_all(
        self, tx: Transaction, changes: Sequence[tuple[str, dict[str, Any], str | None]]
    ) -> list[Event]:
        """Many events in one batch: (type, shown, merchant_id) each, in this order."""
        at = self._clock.now()
        ids = new_ids("evt", len(changes))  # one clock read and one random draw for all
        events = [
            new_event(t, shown, merchant_id=m, at=at, event_id=event_id)
            for (t, shown, m), event_id in zip(changes, ids, strict=True)
        ]
        await self._store.insert(tx, events)
        return events


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
