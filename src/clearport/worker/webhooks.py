"""Webhooks in the worker: the relay loop, delivery jobs, and their metrics.

`webhooks_loop` runs beside the worker's passes, every `CLEARPORT_WEBHOOKS_RELAY_INTERVAL_S`:
it fans new events out to their endpoints (the relay) and queues one `webhooks.deliver` job per
endpoint that got work; about once a second it also queues a job for every endpoint with a
retry due (or with work a dead job left behind), clears the jobs of dead workers, and measures
the backlog. Any number of workers on any number of machines run `WebhookJobs.run_worker()`:
procrastinate hands each job to one of them, and the endpoint's lease (a row with an expiry)
lets one job at a time deliver for it. Jobs are an accelerator, never the source of truth: the
deliveries table is, so a lost or duplicated job costs a delay or nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import procrastinate
import structlog
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Status
from prometheus_client import Counter, Gauge

from clearport.webhooks.service import WebhookService
from clearport.wiring import Container

log = structlog.get_logger("clearport.webhooks")
QUEUE = "webhooks"
SWEEP_INTERVAL_S = 1.0
DUE_ENDPOINTS_PER_SWEEP = 1000
# A worker silent this long is dead: its jobs are failed and their endpoints' work re-queued.
STALLED_AFTER_S = 30.0

DELIVERIES = Counter(
    "clearport_webhook_deliveries",
    "Webhook delivery attempts by outcome (succeeded, retrying, failed, refused).",
    ["outcome"],
)
RETRY_QUEUE = Gauge(
    "clearport_webhook_retry_queue_depth",
    "Deliveries waiting for a retry (at least one attempt failed).",
)
PENDING = Gauge("clearport_webhook_pending_deliveries", "Deliveries not finished.")
OLDEST_UNDELIVERED = Gauge(
    "clearport_webhook_oldest_undelivered_event_age_seconds",
    "Age of the oldest event still to be delivered (or relayed); 0 when none.",
)


class WebhookJobs:
    def __init__(self, service: WebhookService, conninfo: str, *, concurrency: int) -> None:
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
        self._concurrency = concurrency

        # No procrastinate retry: a failed job's deliveries are still pending in the table and
        # the next sweep queues the endpoint again.
        @self.app.task(name="webhooks.deliver", queue=QUEUE)
        async def deliver(endpoint_id: str) -> None:
            run = await service.deliver(endpoint_id)
            for outcome, count in run.outcomes.items():
                DELIVERIES.labels(outcome).inc(count)
            if run.more:
                await self.defer(endpoint_id)

        self._deliver = deliver

    async def __aenter__(self) -> WebhookJobs:
        await self.app.open_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.app.close_async()

    async def defer(self, endpoint_id: str) -> None:
        """Queue the endpoint's delivery job, unless one is queued already."""
        with contextlib.suppress(AlreadyEnqueued):
            await self._deliver.configure(queueing_lock=f"we:{endpoint_id}").defer_async(
                endpoint_id=endpoint_id
            )

    async def fail_stalled(self) -> int:
        """Jobs of workers that stopped sending heartbeats (killed) are marked failed; their
        endpoints' leases run out and the sweep queues them again."""
        manager = self.app.job_manager
        stalled = list(
            await manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=STALLED_AFTER_S)
        )
        for job in stalled:
            await manager.finish_job(job, status=Status.FAILED, delete_job=True)
        return len(stalled)

    async def run_worker(self, **options: Any) -> None:
        """Process delivery jobs; `wait=False` returns once the queue is empty."""
        options.setdefault("install_signal_handlers", False)
        options.setdefault("concurrency", self._concurrency)
        options.setdefault("delete_jobs", "successful")
        await self.app.run_worker_async(queues=[QUEUE], **options)


async def relay_and_queue(
    service: WebhookService, jobs: WebhookJobs, batch: int, *, rounds: int = 10
) -> int:
    """Relay until the queue is empty, in batches, at most `rounds` of them (so the sweep still
    runs under a flood), queueing each endpoint that got work; the number of events relayed."""
    total = 0
    for _ in range(rounds):
        relayed = await service.relay(batch)
        total += relayed.events
        for endpoint_id in relayed.endpoint_ids:
            await jobs.defer(endpoint_id)
        if relayed.events < batch:
            break
    return total


async def sweep(service: WebhookService, jobs: WebhookJobs) -> None:
    """Queue endpoints with deliveries due, clear dead workers' jobs, measure the backlog."""
    for endpoint_id in await service.due_endpoints(DUE_ENDPOINTS_PER_SWEEP):
        await jobs.defer(endpoint_id)
    await jobs.fail_stalled()
    backlog = await service.backlog()
    PENDING.set(backlog.pending)
    RETRY_QUEUE.set(backlog.retrying)
    oldest = backlog.oldest_event_at
    age_s = 0.0 if oldest is None else max(0.0, time.time() - oldest.timestamp())
    OLDEST_UNDELIVERED.set(age_s)


async def webhooks_loop(container: Container, jobs: WebhookJobs, stop: asyncio.Event) -> None:
    settings = container.settings.webhooks
    last_sweep = 0.0
    while not stop.is_set():
        try:
            await relay_and_queue(container.webhooks, jobs, settings.relay_batch)
            if time.monotonic() - last_sweep >= SWEEP_INTERVAL_S:
                last_sweep = time.monotonic()
                await sweep(container.webhooks, jobs)
        except Exception as exc:  # the next round retries; deliveries are in the table
            log.error("webhooks_loop_failed", error=type(exc).__name__, message=str(exc)[:200])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.relay_interval_s)
