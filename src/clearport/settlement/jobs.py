"""A settlement run's partitions as procrastinate jobs, shared by every worker on every machine.

`enqueue(run)` queues one job per pending partition (any process: the worker's schedule, an API
process answering `POST /v1/settlement_runs`); `run_worker()` (in `clearport worker`) takes
them. procrastinate hands each job to one worker (`FOR UPDATE SKIP LOCKED`), and the partition's
own row lock and constraints make a duplicate a no-op. The worker that settles the last
partition enqueues the run's finalize job (one per run, by queueing lock). Decision 0404.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import structlog

from clearport.settlement.domain import SettlementRun
from clearport.settlement.service import SettlementService

if TYPE_CHECKING:
    import procrastinate

log = structlog.get_logger("clearport.settlement")
QUEUE = "settlement"


class SettlementJobs:
    def __init__(self, service: SettlementService, conninfo: str) -> None:
        self.service = service
        self._conninfo = conninfo
        # Built on first use: importing procrastinate (and psycopg's pool) took ~0.2 s of the
        # start of every command that builds a container, most of which never queue a job.
        self._app: procrastinate.App | None = None
        self._partition_task: Any = None
        self._finalize_task: Any = None
        self._opened = False
        self._opening = asyncio.Lock()

    @property
    def app(self) -> procrastinate.App:
        if self._app is None:
            self._app = self._build()
        return self._app

    def _build(self) -> procrastinate.App:
        import procrastinate

        service = self.service
        # A small pool: an API process only defers jobs; a worker's job loop adds its own.
        app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=self._conninfo, min_size=1, max_size=4
            )
        )
        retry = procrastinate.RetryStrategy(max_attempts=5, wait=5)

        @app.task(name="settlement.partition", queue=QUEUE, retry=retry)
        async def settle_partition(run_id: str, partition: int) -> None:
            items = await service.run_partition(run_id, partition)
            log.info("settlement_partition", run=run_id, partition=partition, items=items)
            if not await service.pending_partitions(run_id):
                await self._defer_finalize(run_id)

        @app.task(name="settlement.finalize", queue=QUEUE, retry=retry, lock="finalize")
        async def finalize(run_id: str) -> None:
            run = await service.finalize(run_id)
            log.info("settlement_finalized", run=run_id, status=run.status)

        self._partition_task = settle_partition
        self._finalize_task = finalize
        return app

    async def __aenter__(self) -> SettlementJobs:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect (once; a process that never queues a job never connects)."""
        async with self._opening:
            if not self._opened:
                await self.app.open_async()
                self._opened = True

    async def close(self) -> None:
        async with self._opening:
            if self._opened and self._app is not None:
                await self.app.close_async()
                self._opened = False

    async def _defer_finalize(self, run_id: str) -> None:
        # Called by a task of the built app, or by enqueue once open: the tasks exist.
        from procrastinate.exceptions import AlreadyEnqueued

        with contextlib.suppress(AlreadyEnqueued):
            await self._finalize_task.configure(queueing_lock=f"finalize:{run_id}").defer_async(
                run_id=run_id
            )

    async def enqueue(self, run: SettlementRun) -> int:
        """One job per pending partition (a partition already queued is not queued twice)."""
        from procrastinate.exceptions import AlreadyEnqueued

        await self.open()
        pending = await self.service.pending_partitions(run.id)
        queued = 0
        for partition in pending:
            try:
                await self._partition_task.configure(
                    queueing_lock=f"{run.id}:{partition}"
                ).defer_async(run_id=run.id, partition=partition)
                queued += 1
            except AlreadyEnqueued:
                pass
        if not pending and run.status == "running":
            await self._defer_finalize(run.id)
        return queued

    async def run_worker(self, **options: Any) -> None:
        """Process settlement jobs; `wait=False` returns once the queue is empty."""
        await self.open()
        options.setdefault("install_signal_handlers", False)
        await self.app.run_worker_async(queues=[QUEUE], **options)
