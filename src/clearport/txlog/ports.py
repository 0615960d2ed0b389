"""The transaction log's rows, the chains sealing them, signed checkpoints, and the copies of
both kept outside PostgreSQL (object storage, the DynamoDB mirror)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from clearport.core.uow import Transaction
from clearport.txlog.domain import Checkpoint, MirrorItem, SealedRow, TxlogEntry, TxlogPlace


class TxlogStore(Protocol):
    """The append-only transaction log: entries are written in the transaction of the change
    they record, never updated."""

    async def append(self, tx: Transaction, entries: Sequence[TxlogEntry]) -> None: ...


@dataclass(frozen=True, slots=True)
class ChainRead:
    """A chain as one snapshot of the database shows it: its sealed rows, its checkpoints, and
    how many rows wait for a seal."""

    rows: list[SealedRow]
    checkpoints: list[Checkpoint]
    unsealed: int


class ChainStore(Protocol):
    """The rows of an append-only table, the hash chain sealing them and its checkpoints."""

    async def try_lock(self, tx: Transaction, chain: str) -> bool: ...
    async def places(self, object_ids: Sequence[str], limit: int) -> list[TxlogPlace]:
        """The txlog entries of these objects with their seals and covering checkpoints, in
        log order, at most `limit`."""
        ...

    async def head(self, tx: Transaction, chain: str) -> tuple[int, bytes]: ...
    async def unsealed(
        self, tx: Transaction, chain: str, lookback_s: int, limit: int
    ) -> list[tuple[int, str]]:
        """(source_seq, canonical row) of rows not yet sealed, in source order."""
        ...

    async def insert_seals(
        self, tx: Transaction, chain: str, seals: Sequence[tuple[int, int, bytes]]
    ) -> None: ...
    async def read(self, chain: str, lookback_s: int) -> ChainRead:
        """Rows, seals and checkpoints from one snapshot (REPEATABLE READ)."""
        ...

    async def sealed_after(self, chain: str, seq: int, limit: int) -> list[SealedRow]:
        """Up to `limit` sealed positions after `seq`, in order."""
        ...

    def walk(self, chain: str) -> AsyncIterator[SealedRow]:
        """Every sealed position in order, streamed."""
        ...

    # -- checkpoints --
    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Keep a checkpoint (a second one for the same position is ignored)."""
        ...

    async def checkpoint_due(self, chain: str, interval_s: float) -> tuple[int, bytes] | None:
        """The chain's head (seq, hash) if it has no checkpoint and the last checkpoint is at
        least `interval_s` old (by the database's clock, shared by every machine); else None."""
        ...

    async def checkpoints_after(self, chain: str, seq: int, limit: int) -> list[Checkpoint]: ...


class ChainCopies(Protocol):
    """How far each copy of a chain outside PostgreSQL has got (`through`, a chain position),
    and a lease so that one worker at a time extends a copy (others skip, nobody waits)."""

    async def through(self, target: str) -> int: ...
    async def lease(self, target: str, owner: str, ttl_s: float) -> int | None:
        """The copy's `through` if this owner now holds its lease, else None."""
        ...

    async def release(self, target: str, owner: str, through: int) -> None:
        """Record progress (never backwards) and give the lease up."""
        ...

    async def lag(self, target: str, chain: str) -> tuple[int, float]:
        """(positions sealed but not yet copied, seconds since the oldest of them was sealed)."""
        ...


class CheckpointSigner(Protocol):
    """Signs checkpoints with a private key the database never sees (the key provider's)."""

    algorithm: str

    async def key_id(self) -> str: ...
    async def sign(self, message: bytes) -> bytes: ...
    async def public_key_pem(self) -> bytes: ...


class SignatureVerifier(Protocol):
    """Checks checkpoints against one trusted public key."""

    key_id: str

    def check(self, checkpoint: Checkpoint) -> str | None:
        """None when `checkpoint` is signed by the trusted key; else what is wrong."""
        ...


class MirrorTarget(Protocol):
    """The DynamoDB table mirroring the transaction log."""

    async def put(self, items: Sequence[MirrorItem]) -> list[int]:
        """Write each item unless its position is there already (a conditional put, so a
        retry never writes twice); the positions already there with *other* content."""
        ...

    def scan(self) -> AsyncIterator[dict[str, Any]]:
        """Every item's attributes (`seq` ...), in position order."""
        ...
