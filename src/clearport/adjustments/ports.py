"""Where adjustments are kept, and how the API shows one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from clearport.adjustments.domain import Adjustment
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction


class AdjustmentStore(Protocol):
    async def insert(self, tx: Transaction, adjustment: Adjustment) -> None: ...
    async def get(
        self, tx: Transaction, adjustment_id: str, *, merchant_id: str | None = None
    ) -> Adjustment | None: ...
    async def list(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Adjustment]:
        """Filters: `created_gte`, `created_lt`."""
        ...


class Representation(Protocol):
    """How the API shows an adjustment (`http.representation`): the stored idempotent
    response is its bytes."""

    def adjustment(self, adjustment: Adjustment) -> dict[str, Any]: ...
    def response_body(self, shown: dict[str, Any]) -> bytes: ...
