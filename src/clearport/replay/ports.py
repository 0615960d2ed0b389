"""What a replay reads: the window's attempts (for observed approval rates) and its payments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from clearport.core.uow import Transaction
from clearport.replay.domain import Observed, PastPayment


@dataclass(frozen=True, slots=True)
class PastRow:
    payment: PastPayment
    merchant_country: str
    merchant_pricing: dict[str, Any]


class History(Protocol):
    async def observed(self, tx: Transaction, since: datetime, until: datetime) -> Observed:
        """Approvals over attempts per connector, at every level the projection uses."""
        ...

    def payments(self, tx: Transaction, since: datetime, until: datetime) -> AsyncIterator[PastRow]:
        """The window's payments in the order they were made, streamed (bounded memory)."""
        ...
