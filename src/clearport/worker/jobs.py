"""The worker loop: janitor (pending attempts, expiring authorizations), ledger hold expiry,
sealer and checkpoints, purges, the nightly settlement schedule with its partition jobs, and
webhooks (the relay loop and delivery jobs, worker/webhooks.py); beside them, the copies out of
PostgreSQL (checkpoints to object storage, the DynamoDB mirror) in a loop of their own, so that a
slow S3 or DynamoDB never delays the janitor.

Every job is safe to run in several workers at once: a pending attempt's answer is written only
while it is still pending and expiring payments are claimed with `FOR UPDATE SKIP LOCKED` and a
marker (docs/decisions/0304), each chain is sealed under an advisory lock, and the idempotency
purge is a plain DELETE (two purges of the same rows delete each row once).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import structlog

from clearport.settlement.jobs import SettlementJobs
from clearport.txlog.service import CHAINS
from clearport.wiring import Container
from clearport.worker.settlement import settlement_pass
from clearport.worker.webhooks import WebhookJobs, webhooks_loop

log = structlog.get_logger("clearport.worker")


@dataclass
class PassReport:
    resolved: int = 0
    expired: int = 0
    sealed: dict[str, int] = field(default_factory=dict)
    purged: int = 0
    holds_expired: int = 0
    webhooks_purged: int = 0


async def run_once(container: Container) -> PassReport:
    """One pass of every job; each job is bounded by the batch size."""
    settings = container.settings
    batch = settings.worker_batch_size
    report = PassReport()
    report.resolved = await container.payments.resolve_pending(batch)
    report.expired = await container.payments.expire_authorizations(batch)
    for chain in CHAINS:
        result = await container.chains.seal(chain, batch * 10)
        report.sealed[chain] = result.sealed
        if result.checkpoint_error:  # the seal stands; the next pass signs the head
            log.warning("checkpoint_failed", chain=chain, error=result.checkpoint_error)
    async with container.db.transaction() as tx:
        report.holds_expired = await container.ledger.expire(tx, limit=batch)
    report.purged = await container.idempotency_store.purge_expired(
        container.clock.now() - timedelta(seconds=settings.idempotency_ttl_s)
    )
    # Deliveries can outpace one batch a pass: purge ten.
    purged = await container.webhooks.purge(batch * 10)
    report.webhooks_purged = purged.attempts + purged.deliveries + purged.events + purged.secrets
    return report


async def run_forever(container: Container, stop: asyncio.Event) -> None:
    """Run passes until `stop` is set; a failing pass is logged and retried next interval.

    Settlement runs beside the passes: each pass starts (or joins) yesterday's run once its
    cutoff has passed and queues its partitions; a procrastinate worker in this process takes
    partition jobs, shared with every other worker on every machine.
    """
    jobs = container.settlement_jobs
    await jobs.open()
    hooks = container.settings.webhooks
    async with WebhookJobs(
        container.webhooks, container.db.url, concurrency=hooks.concurrency
    ) as deliveries:
        background = [
            asyncio.create_task(jobs.run_worker(), name="settlement-jobs"),
            asyncio.create_task(deliveries.run_worker(), name="webhook-jobs"),
            asyncio.create_task(webhooks_loop(container, deliveries, stop), name="webhook-relay"),
            asyncio.create_task(_copies(container, stop), name="copies"),
        ]
        try:
            await _passes(container, stop, jobs)
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def copy_once(container: Container, owner: str) -> dict[str, int]:
    """Checkpoints into object storage, then a batch of the DynamoDB mirror (when configured).
    Each copy holds a lease while it runs, so workers on other machines skip it meanwhile."""
    batch = container.settings.worker_batch_size
    copied = {
        f"{chain}_checkpoints": await container.chains.copy_checkpoints(chain, owner, batch)
        for chain in CHAINS
    }
    if container.mirror is not None:
        result = await container.mirror.copy(owner)
        copied["mirror"] = 0 if result is None else result.copied
        if result is not None and result.conflicts:
            # Never overwritten: `clearport txlog verify --against dynamodb` reports them.
            log.error("mirror_conflicts", positions=result.conflicts[:20])
    return copied


async def _copies(container: Container, stop: asyncio.Event) -> None:
    owner = f"{socket.gethostname()}:{os.getpid()}"
    interval = container.settings.worker_interval_s
    while not stop.is_set():
        try:
            copied = await copy_once(container, owner)
            if any(copied.values()):
                log.info("copies_pass", **copied)
        except Exception as exc:  # S3 or DynamoDB down: lag now, catch up on a later pass
            log.error("copies_pass_failed", error=type(exc).__name__, message=str(exc)[:200])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


def heartbeat_file(data_dir: Path) -> Path:
    """Touched after every pass: a liveness probe reads its age (deploy/k8s/worker.yaml)."""
    return data_dir / "worker.alive"


def _beat(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


async def _passes(container: Container, stop: asyncio.Event, jobs: SettlementJobs) -> None:
    interval = container.settings.worker_interval_s
    alive = heartbeat_file(container.settings.data_dir)
    while not stop.is_set():
        try:
            await settlement_pass(container, jobs)
        except Exception as exc:  # the other jobs go on; the next pass retries
            log.error("settlement_pass_failed", error=type(exc).__name__, message=str(exc)[:200])
        try:
            report = await run_once(container)
            if (
                report.resolved
                or report.expired
                or report.holds_expired
                or any(report.sealed.values())
            ):
                log.info(
                    "worker_pass",
                    resolved=report.resolved,
                    expired=report.expired,
                    sealed=report.sealed,
                    purged=report.purged,
                    holds_expired=report.holds_expired,
                )
        except Exception as exc:  # keep the loop alive; the next pass retries
            log.error("worker_pass_failed", error=type(exc).__name__, message=str(exc)[:200])
        await asyncio.to_thread(_beat, alive)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
