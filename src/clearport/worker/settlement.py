"""Settlement in the worker: the nightly schedule. A run's partitions are procrastinate jobs
(`settlement/jobs.py`), queued here or by `POST /v1/settlement_runs` in any API process.

`settlement_pass(container, jobs)` is cheap and safe to call on every worker pass: once the
cutoff after yesterday has passed it starts (or joins) yesterday's run and enqueues one job per
pending partition. Any number of workers on any number of machines then run
`SettlementJobs.run_worker()`.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from clearport.access.domain import Origin, Principal, PrincipalKind
from clearport.core.errors import InvalidRequest
from clearport.settlement.domain import SettlementRun
from clearport.settlement.jobs import SettlementJobs
from clearport.wiring import Container

log = structlog.get_logger("clearport.settlement")
SYSTEM_WORKER = Principal(PrincipalKind.SYSTEM, key_id="worker")
_WORKER_ORIGIN = Origin("worker")


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
