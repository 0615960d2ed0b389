"""An in-memory `TxlogStore` for the fast test tier."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from clearport.core.uow import Transaction
from clearport.txlog.domain import TxlogEntry


class FakeTxlogStore:
    def __init__(self) -> None:
        self.entries: list[TxlogEntry] = []

    def snapshot(self) -> object:
        return list(self.entries)

    def restore(self, snapshot: object) -> None:
        self.entries = list(cast(list[TxlogEntry], snapshot))

    async def append(self, tx: Transaction, entries: Sequence[TxlogEntry]) -> None:
        self.entries.extend(entries)

    def history(self, object_id: str) -> list[tuple[str | None, str]]:
        """(from, to) of every change of one object, oldest first."""
        return [(e.from_status, e.to_status) for e in self.entries if e.object_id == object_id]
