"""The transaction log's rows, the chains sealing them, and signed checkpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from clearport.core.uow import Transaction
from clearport.txlog.domain import Checkpoint, SealedRow, TxlogEntry


class TxlogStore(Protocol):
    """The append-only transaction log: entries are written in the transaction of the change
    they record, never updated."""

    async def append(self, tx: Transaction, entries: Sequence[TxlogEntry]) -> None: ...


class ChainStore(Protocol):
    """The rows of an append-only table and the hash chain sealing them."""

    async def try_lock(self, tx: Transaction, chain: str) -> bool: ...
    async def head(self, tx: Transaction, chain: str) -> tuple[int, bytes]: ...
    async def unsealed(
        self, tx: Transaction, chain: str, lookback_s: int, limit: int
    ) -> list[tuple[int, str]]:
        """(source_seq, canonical row) of rows not yet sealed, in source order."""
        ...

    async def insert_seals(
        self, tx: Transaction, chain: str, seals: Sequence[tuple[int, int, bytes]]
    ) -> None: ...
    def walk(self, chain: str) -> AsyncIterator[SealedRow]: ...


class CheckpointStore(Protocol):
    """Signed chain heads kept outside the database."""

    def append(self, checkpoint: Checkpoint) -> None: ...
    def read(self, chain: str) -> list[Checkpoint]: ...
