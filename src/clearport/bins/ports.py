"""What the BIN service needs from storage, and what the vault asks of BIN data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from clearport.bins.domain import BinInfo, BinRange
from clearport.core.uow import Transaction


class BinRepository(Protocol):
    async def replace_all(self, tx: Transaction, ranges: Sequence[BinRange]) -> None:
        """The table becomes exactly `ranges`, in the caller's transaction."""
        ...

    async def all(self, tx: Transaction) -> list[BinRange]: ...
    async def count(self, tx: Transaction) -> int: ...


class BinLookup(Protocol):
    """What the vault asks when it tokenizes a card: the narrowest range holding its BIN."""

    async def lookup(self, digits: str) -> BinInfo | None: ...
