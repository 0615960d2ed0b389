"""Sealing the transaction log and the audit log into hash chains, signing checkpoints of their
heads, copying those out of PostgreSQL, and verifying all of it.

The request path only appends rows; the worker's sealer links them into the chain in batches
(one sealer at a time per chain: an advisory lock, so several workers never seal the same rows
twice). After the seal commits, the head is signed (at most every `checkpoint_interval_s`, and
always by `txlog seal`) and the checkpoint stored in the database; `copy_checkpoints` then puts
each into object storage under a key of its own. Nothing is signed or copied while a
transaction is open: the signer may be KMS and the storage S3.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from clearport.core.errors import InternalError
from clearport.core.uow import UnitOfWork
from clearport.storage.ports import ObjectStorage
from clearport.txlog.domain import (
    Checkpoint,
    SealedRow,
    TxlogPlace,
    Verdict,
    checkpoint_message,
    link,
    reconcile_checkpoints,
    verify,
)
from clearport.txlog.ports import ChainCopies, ChainStore, CheckpointSigner, SignatureVerifier

CHAINS = ("txlog", "audit")
CHECKPOINTS_PREFIX = "txlog/checkpoints"
EXPORTS_PREFIX = "txlog/exports"
COPY_LEASE_S = 120.0


def checkpoint_key(chain: str, seq: int) -> str:
    return f"{CHECKPOINTS_PREFIX}/{chain}/{seq:015d}.json"


def checkpoint_bytes(checkpoint: Checkpoint) -> bytes:
    """The object a checkpoint is stored as: the same bytes on every write."""
    return (json.dumps(checkpoint.to_json(), sort_keys=True) + "\n").encode()


def storage_target(chain: str) -> str:
    """The `chain_copies` target of a chain's checkpoints in object storage."""
    return f"storage:{chain}-checkpoints"


@dataclass(frozen=True, slots=True)
class SealResult:
    chain: str
    sealed: int
    head_seq: int
    checkpoint_seq: int | None = None
    # The signer failed (KMS unreachable): the seal stands, the next pass signs the head.
    checkpoint_error: str | None = None


@dataclass(frozen=True, slots=True)
class Export:
    """A chain exported from one snapshot: its rows and the checkpoints they can prove."""

    chain: str
    rows: list[SealedRow]
    checkpoints: list[Checkpoint]


class ChainService:
    def __init__(
        self,
        uow: UnitOfWork,
        store: ChainStore,
        copies: ChainCopies,
        storage: ObjectStorage,
        signer: CheckpointSigner,
        verifier_for: Callable[[bytes], SignatureVerifier],
        *,
        lookback_s: int,
        checkpoint_interval_s: float,
    ) -> None:
        self._uow = uow
        self._store = store
        self._copies = copies
        self._storage = storage
        self._signer = signer
        self._verifier_for = verifier_for
        self._lookback_s = lookback_s
        self._interval_s = checkpoint_interval_s

    # --- sealing ---------------------------------------------------------------------------------

    async def seal(self, chain: str, limit: int, *, checkpoint_now: bool = False) -> SealResult:
        """Seal up to `limit` rows; then sign the head if a checkpoint is due (or now)."""
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
        # After the commit: a checkpoint never names a head the database does not have.
        try:
            signed = await self.checkpoint(chain, force=checkpoint_now)
        except InternalError as exc:
            return SealResult(chain, len(seals), seq, None, exc.message)
        return SealResult(chain, len(seals), seq, signed)

    async def checkpoint(self, chain: str, *, force: bool = False) -> int | None:
        """Sign the chain's head if it has no checkpoint and one is due; the position signed."""
        due = await self._store.checkpoint_due(chain, 0.0 if force else self._interval_s)
        if due is None:
            return None
        seq, head = due
        signature = await self._signer.sign(checkpoint_message(chain, seq, head))
        await self._store.insert_checkpoint(
            Checkpoint(
                chain, seq, head, self._signer.algorithm, await self._signer.key_id(), signature
            )
        )
        return seq

    async def copy_checkpoints(self, chain: str, owner: str, limit: int) -> int:
        """Put checkpoints not yet in object storage there, in order; how many."""
        target = storage_target(chain)
        through = await self._copies.lease(target, owner, COPY_LEASE_S)
        if through is None:
            return 0  # another worker is copying
        copied = 0
        try:
            for cp in await self._store.checkpoints_after(chain, through, limit):
                await self._storage.put(checkpoint_key(chain, cp.seq), checkpoint_bytes(cp))
                through = cp.seq
                copied += 1
        finally:
            await self._copies.release(target, owner, through)
        return copied

    # --- verifying -------------------------------------------------------------------------------

    async def public_key_pem(self) -> bytes:
        return await self._signer.public_key_pem()

    async def trusted_verifier(self, public_key_pem: bytes | None = None) -> SignatureVerifier:
        """A verifier for `public_key_pem`, by default the signer's own public key."""
        return self._verifier_for(public_key_pem or await self._signer.public_key_pem())

    async def places(self, object_ids: Sequence[str], limit: int = 100) -> list[TxlogPlace]:
        """Where these objects' transaction-log entries sit in the chain, each covering
        checkpoint's signature checked against the trusted key (a bounded look; `verify`
        walks the whole chain)."""
        found = await self._store.places(object_ids, limit)
        if not any(p.checkpoint for p in found):
            return found
        verifier = await self.trusted_verifier()
        return [
            p
            if p.checkpoint is None
            else replace(p, checkpoint_problem=verifier.check(p.checkpoint))
            for p in found
        ]

    async def verify(self, chain: str, verifier: SignatureVerifier | None = None) -> Verdict:
        """The chain in PostgreSQL against its hashes and both copies of its checkpoints.

        Read in this order, so that nothing written meanwhile looks like tampering: the copy
        progress, then the checkpoints in object storage, then one database snapshot (rows,
        seals, checkpoints). Everything up to that progress was in storage before the listing."""
        verifier = verifier or await self.trusted_verifier()
        copied = await self._copies.through(storage_target(chain))
        stored = await self._stored_checkpoints(chain)
        read = await self._store.read(chain, self._lookback_s)
        merged, disagreement = reconcile_checkpoints(chain, read.checkpoints, stored, copied)
        return verify(
            chain,
            read.rows,
            merged,
            verifier.check,
            unsealed=read.unsealed,
            also_bad=disagreement,
        )

    async def _stored_checkpoints(self, chain: str) -> list[Checkpoint]:
        found: list[Checkpoint] = []
        for key in await self._storage.keys(f"{CHECKPOINTS_PREFIX}/{chain}/"):
            data = await self._storage.get(key)
            if data is None:
                continue
            try:
                found.append(Checkpoint.from_json(json.loads(data)))
            except (ValueError, KeyError, TypeError):
                # A malformed object is a forged one: it cannot count as evidence either way.
                found.append(Checkpoint(chain, _seq_of(key), b"", "malformed", "malformed", b""))
        return found

    async def export(self, chain: str) -> Export:
        """Rows and checkpoints from one snapshot: checkpoints beyond the exported rows (sealed
        later) are left out, so the file verifies on its own, whatever was sealed since."""
        read = await self._store.read(chain, self._lookback_s)
        length = read.rows[-1].seq if read.rows else 0
        return Export(chain, read.rows, [c for c in read.checkpoints if c.seq <= length])

    async def put_export(self, key: str, local_path: str) -> str:
        """An export file into object storage; its URI."""
        return await self._storage.put_file(key, local_path)


def _seq_of(key: str) -> int:
    name = key.rsplit("/", 1)[-1].split(".", 1)[0]
    return int(name) if name.isdigit() else 0


def verify_export(
    chain: str,
    rows: Iterable[SealedRow],
    checkpoints: Iterable[Checkpoint],
    verifier: SignatureVerifier,
) -> Verdict:
    """An exported chain, offline: its rows against the checkpoints the file carries."""
    return verify(chain, list(rows), list(checkpoints), verifier.check)
