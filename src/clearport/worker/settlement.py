"""Settlement in the worker: the nightly schedule, and a run's partitions as procrastinate jobs.

`settlement_pass(container, jobs)` is cheap and safe to call on every worker pass: once the
cutoff after yesterday has passed it starts (or joins) yesterday's run and enqueues one job per
pending partition. Any number of workers on any number of machines then run
`SettlementJobs.run_worker()`: procrastinate hands each job to one worker (`FOR UPDATE SKIP
LOCKED`), and the partition's own row lock and constraints make a duplicate a no-op. The worker
that settles the last partition enqueues the run's finalize job (one per run, by queueing lock).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import procrastinate
import structlog
from procrastinate.exceptions import AlreadyEnqueued

from clearport.access.domain import Origin, Principal, PrincipalKind
from clearport.core.errors import InvalidRequest
from clearport.settlement.domain import SettlementRun
from clearport.settlement.service import SettlementService
from clearport.wiring import Container

log = structlog.get_logger("clearport.settlement")
QUEUE = "settlement"
SYSTEM_WORKER = Principal(PrincipalKind.SYSTEM, key_id="worker")
_WORKER_ORIGIN = Origin("worker")


class SettlementJobs:
    def __init__(self, service: SettlementService, conninfo: str) -> None:
        self.service = service
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
        retry = procrastinate.RetryStrategy(max_attempts=5, wait=5)

        @self.app.task(name="settlement.partition", queue=QUEUE, retry=retry)
        async def settle_partition(run_id: str, partition: int) -> None:
            items = await service.run_partition(run_id, partition)
            log.info("settlement_partition", run=run_id, partition=partition, items=items)
            if not await service.pending_partitions(run_id):
                await self._defer_finalize(run_id)

        @self.app.task(name="settlement.finalize", queue=QUEUE, retry=retry, lock="finalize")
        async def finalize(run_id: str) -> None:
            run = await service.finalize(run_id)
            log.info("settlement_finalized", run=run_id, status=run.status)

        self._partition_task = settle_partition
        self._finalize_task = finalize

    async def __aenter__(self) -> SettlementJobs:
        await self.app.open_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.app.close_async()

    async def _defer_finalize(self, run_id: str) -> None:
        with contextlib.suppress(AlreadyEnqueued):
            await self._finalize_task.configure(queueing_lock=f"finalize:{run_id}").defer_async(
                run_id=run_id
            )

    async def enqueue(self, run: SettlementRun) -> int:
        """One job per pending partition (a partition already queued is not queued twice)."""
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
        options.setdefault("install_signal_handlers", False)
        await self.app.run_worker_async(queues=[QUEUE], **options)


async def settlement_pass(container: Container, jobs: SettlementJobs) -> SettlementRun | None:
    """The schedule: after the cutoff, start yesterday's run and queue its partitions."""
    service = container.settlement
    business_date = service.today() - timedelta(days=1)
    if service.cutoff_for(business_date) > container.clock.now():
        return None
    run = await service.run_for_date(business_date)
    if run is None:
        try:
            run, _ = await service.start(SYSTEM_WORKER, _WORKER_ORIGIN, business_date)
        except InvalidRequest as exc:
            if exc.code == "date_before_first_transaction":
                return None  # a new platform: nothing to settle yet
            raise
        log.info("settlement_run_started", run=run.id, business_date=str(business_date))
    if run.status == "running":
        await jobs.enqueue(run)
    return run
