"""Where events are kept."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.events.domain import Event


class EventStore(Protocol):
    """The outbox: events are inserted in the transaction of the change they describe."""

    async def insert(self, tx: Transaction, events: Sequence[Event]) -> None: ...
    async def get(
        self, tx: Transaction, event_id: str, *, merchant_id: str | None = None
    ) -> Event | None: ...
    async def list(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Event]:
        """Newest first by sequence; `merchant_id` None lists every merchant's and the
        platform's. Filters: `type`, `object_id`, `created_gte`, `created_lt`."""
        ...
