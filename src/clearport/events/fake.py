"""An in-memory `EventStore` for the fast test tier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from clearport.core.pagination import Page, PageRequest, filtered, paginate
from clearport.core.uow import Transaction
from clearport.events.domain import Event


class FakeEventStore:
    def __init__(self) -> None:
        self.events: list[Event] = []  # in insertion order, like the table's `seq`

    def snapshot(self) -> object:
        return list(self.events)

    def restore(self, snapshot: object) -> None:
        self.events = list(cast(list[Event], snapshot))

    def types(self, object_id: str | None = None) -> list[str]:
        """The event types written so far (for one object), oldest first."""
        return [e.type for e in self.events if object_id in (None, e.object_id)]

    async def insert(self, tx: Transaction, events: Sequence[Event]) -> None:
        self.events.extend(events)

    async def get(
        self, tx: Transaction, event_id: str, *, merchant_id: str | None = None
    ) -> Event | None:
        for event in self.events:
            if event.id == event_id and merchant_id in (None, event.merchant_id):
                return event
        return None

    async def list(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Event]:
        mine = [e for e in self.events if merchant_id in (None, e.merchant_id)]
        chosen = filtered(
            mine,
            filters,
            equal={"type": lambda e: e.type, "object_id": lambda e: e.object_id},
            created_at=lambda e: e.created_at,
        )
        # By sequence (here: position), as the table pages: cursors name events by id.
        position = {e.id: f"{i:012d}" for i, e in enumerate(self.events)}
        by_position = PageRequest(
            page.limit,
            None if page.starting_after is None else position.get(page.starting_after, ""),
            None if page.ending_before is None else position.get(page.ending_before, "~"),
        )
        return paginate(chosen, by_position, lambda e: position[e.id])
