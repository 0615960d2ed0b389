"""Sealing the transaction log and the audit log into hash chains, and verifying them.

The request path only appends rows; the worker's sealer links them into the chain in batches and
writes a signed checkpoint of the head to a file outside the database after each batch. One sealer
at a time per chain (an advisory lock): several workers never seal the same rows twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearport.app.ports import ChainStore, CheckpointStore, UnitOfWork
from clearport.domain.chain import Checkpoint, SealedRow, Verdict, checkpoint_mac, link, verify

CHAINS = ("txlog", "audit")


@dataclass(frozen=True, slots=True)
class SealResult:
    chain: str
    sealed: int
    head_seq: int


class ChainService:
    def __init__(
        self,
        uow: UnitOfWork,
        store: ChainStore,
        checkpoints: CheckpointStore,
        key: bytes,
        *,
        lookback_s: int,
    ) -> None:
        self._uow = uow
        self._store = store
        self._checkpoints = checkpoints
        self._key = key
        self._lookback_s = lookback_s

    async def seal(self, chain: str, limit: int) -> SealResult:
        async with self._uow.transaction() as tx:
            if not await self._store.try_lock(tx, chain):
                return SealResult(chain, 0, 0)
            seq, head = await self._store.head(tx, chain)
            rows = await self._store.unsealed(tx, chain, self._lookback_s, limit)
            seals: list[tuple[int, int, bytes]] = []
            for source_seq, text in rows:
                seq += 1
                head = link(head, seq, source_seq, text)
                seals.append((seq, source_seq, head))
            if seals:
                await self._store.insert_seals(tx, chain, seals)
        if seals:
            # After the commit: a checkpoint never names a head the database does not have.
            self._checkpoints.append(
                Checkpoint(chain, seq, head, checkpoint_mac(self._key, chain, seq, head))
            )
        return SealResult(chain, len(seals), seq)

    async def verify(self, chain: str) -> Verdict:
        rows = [row async for row in self._store.walk(chain)]
        return verify(chain, rows, self._checkpoints.read(chain), self._key)

    def verify_rows(self, chain: str, rows: list[SealedRow]) -> Verdict:
        return verify(chain, rows, self._checkpoints.read(chain), self._key)

    async def export(self, chain: str) -> list[SealedRow]:
        return [row async for row in self._store.walk(chain)]
