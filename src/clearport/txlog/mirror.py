"""The DynamoDB mirror of the transaction log, as a use case: copy sealed entries out, report
how far behind the copy is, and compare the copy with PostgreSQL.

Only sealed entries are mirrored, keyed by their chain position: positions have no gaps, so a
missing item is visible, and a retry's conditional put never writes an entry twice. The copy
runs in the worker, never on the payment path: when DynamoDB is slow, throttles or is down,
the mirror lags (`/metrics` shows by how much) and catches up on a later pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clearport.txlog.domain import MirrorItem, MirrorReport, mirror_differences
from clearport.txlog.ports import ChainCopies, ChainStore, MirrorTarget

CHAIN = "txlog"
TARGET = "dynamodb:txlog"
LEASE_S = 120.0


@dataclass(frozen=True, slots=True)
class MirrorPass:
    copied: int
    through: int
    # Positions that were in the mirror with other content: left as found, for verify.
    conflicts: list[int]


class TxlogMirror:
    def __init__(
        self,
        store: ChainStore,
        copies: ChainCopies,
        target: MirrorTarget,
        *,
        batch_size: int,
    ) -> None:
        self._store = store
        self._copies = copies
        self._target = target
        self._batch_size = batch_size

    async def copy(self, owner: str) -> MirrorPass | None:
        """One batch of sealed entries after the mirror's progress; None when another worker
        holds the lease. Progress moves only past entries that were written (or found equal)."""
        through = await self._copies.lease(TARGET, owner, LEASE_S)
        if through is None:
            return None
        copied = 0
        conflicts: list[int] = []
        try:
            rows = await self._store.sealed_after(CHAIN, through, self._batch_size)
            items = [MirrorItem.of(r) for r in rows if r.row_text is not None]
            if items:
                conflicts = await self._target.put(items)
            # A sealed position whose row is gone (tampering) stops the copy there: verify of
            # the chain says why; the mirror never holds a hole of our making.
            for row in rows:
                if row.row_text is None:
                    break
                through = row.seq
                copied += 1
        finally:
            await self._copies.release(TARGET, owner, through)
        return MirrorPass(copied, through, conflicts)

    async def lag(self) -> tuple[int, float]:
        """(entries sealed but not mirrored yet, seconds since the oldest of them was sealed)."""
        return await self._copies.lag(TARGET, CHAIN)

    async def compare(self) -> MirrorReport:
        """The mirror against PostgreSQL: missing, extra and differing positions."""
        through = await self._copies.through(TARGET)
        report = MirrorReport(mirrored_through=through)
        expected = self._store.walk(CHAIN).__aiter__()
        actual = self._target.scan().__aiter__()
        want = await _next(expected)
        have = await _next(actual)
        while want is not None or have is not None:
            have_seq = None if have is None else int(have.get("seq", -1))
            if want is not None and (have_seq is None or want.seq < have_seq):
                if want.seq <= through:
                    report.missing.append(want.seq)
                else:
                    report.pending += 1
                want = await _next(expected)
            elif want is None or (have_seq is not None and have_seq < want.seq):
                report.extra.append(have_seq if have_seq is not None else -1)
                have = await _next(actual)
            else:
                report.compared += 1
                if want.row_text is None:
                    differing = ["row"]  # the database lost the row: the mirror still has it
                else:
                    item = {k: v for k, v in (have or {}).items() if k != "shard"}
                    differing = mirror_differences(MirrorItem.of(want), item)
                if differing:
                    report.differing.append((want.seq, differing))
                want = await _next(expected)
                have = await _next(actual)
        return report


async def _next(iterator: Any) -> Any:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return None
