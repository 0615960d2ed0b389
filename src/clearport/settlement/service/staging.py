"""Staging a run's sources in shares, several at once (decision 0914).

The run row is committed first, not staged (`staged_at` NULL), with its shares. Each share is
claimed and staged in ONE transaction on a connection of its own (claims, staged rows, its
counts per partition, done), so a crash (kill -9 of this process, or of PostgreSQL) rolls back
only the shares in flight. Whoever comes to the run next (a second `settle`, a resumed one, a
partition job) stages the shares still pending, waits for those another worker holds, then
sums them up in one transaction that sets `staged_at`; no partition is claimed before."""

from __future__ import annotations

import asyncio
from functools import partial

from clearport.core.errors import InvalidState
from clearport.core.uow import UnitOfWork
from clearport.settlement.domain import SettlementRun
from clearport.settlement.ports import RunStore
from clearport.settlement.service.workers import in_parallel

WAIT_S = 0.5

MAX_WAIT_ROUNDS = 7_200  # one hour of waiting for other workers' shares


class RunStaging:
    def __init__(self, uow: UnitOfWork, work: UnitOfWork, store: RunStore, workers: int) -> None:
        """`work` is the pool the shares are staged on, `workers` connections of it at once."""
        self._uow = uow
        self._work = work
        self._store = store
        self._workers = workers

    async def staged(self, run: SettlementRun) -> SettlementRun:
        """The run, staged: by this process (the shares still pending, `workers` at once) and
        the others (waited for)."""
        if run.staged_at is not None:
            return run
        for _ in range(MAX_WAIT_ROUNDS):
            async with self._uow.transaction() as tx:
                todo = await self._store.pending_stage_shares(tx, run.id)
            if not todo:
                async with self._work.transaction() as tx:
                    return await self._store.finish_staging(tx, run)
            staged: list[int] = []
            await in_parallel(self._workers, todo, partial(self._stage, run, into=staged))
            if not staged:  # every pending share is being staged by another worker: wait
                await asyncio.sleep(WAIT_S)
        raise InvalidState(f"The staging of {run.id} is still in progress.")

    async def _stage(self, run: SettlementRun, share: int, *, into: list[int]) -> None:
        async with self._work.transaction() as tx:
            if await self._store.stage_share(tx, run, share):
                into.append(share)
