"""Sealing the transaction log and the audit log into hash chains, and verifying them.

The request path only appends rows; the worker's sealer links them into the chain in batches and
writes a signed checkpoint of the head to a file outside the database after each batch. One sealer
at a time per chain (an advisory lock): several workers never seal the same rows twice.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from clearport.core.uow import UnitOfWork
from clearport.txlog.domain import Checkpoint, SealedRow, Verdict, checkpoint_mac, link, verify
from clearport.txlog.ports import ChainStore, CheckpointStore

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
        key_material: Callable[[], Awaitable[bytes]],
        *,
        lookback_s: int,
    ) -> None:
        self._uow = uow
        self._store = store
        self._checkpoints = checkpoints
        self._key_material = key_material
        self._key: bytes | None = None
        self._lookback_s = lookback_s

    async def key(self) -> bytes:
        """The checkpoint MAC key: derived from secret material held by the key provider (the
        vault's fingerprint key: keyring file or KMS), never stored in the database."""
        if self._key is None:
            material = await self._key_material()
            self._key = hmac.new(
                material, b"clearport-chain-checkpoint-v1", hashlib.sha256
            ).digest()
        return self._key

    async def seal(self, chain: str, limit: int) -> SealResult:
        key = await self.key()
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
                Checkpoint(chain, seq, head, checkpoint_mac(key, chain, seq, head))
            )
        return SealResult(chain, len(seals), seq)

    async def verify(self, chain: str) -> Verdict:
        rows = [row async for row in self._store.walk(chain)]
        return verify(chain, rows, self._checkpoints.read(chain), await self.key())

    async def verify_rows(self, chain: str, rows: list[SealedRow]) -> Verdict:
        return verify(chain, rows, self._checkpoints.read(chain), await self.key())

    async def export(self, chain: str) -> list[SealedRow]:
        return [row async for row in self._store.walk(chain)]
