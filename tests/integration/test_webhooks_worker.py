"""The worker's side: the relay queues one procrastinate job per endpoint with work, the jobs
deliver, the sweep re-queues what is due and measures the backlog (the metrics)."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY

from clearport.access.domain import Origin
from clearport.config import Settings
from clearport.worker.webhooks import WebhookJobs, relay_and_queue, sweep
from tests.integration.test_payments_api import pay
from tests.payments_support import ShiftedClock
from tests.support import Api, pg
from tests.webhook_support import merchant, receiving, webhook_container


def _sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_jobs_deliver_and_the_sweep_measures_the_backlog(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    clock = ShiftedClock()
    succeeded = _sample("clearport_webhook_deliveries_total", outcome="succeeded")
    retrying = _sample("clearport_webhook_deliveries_total", outcome="retrying")
    with receiving() as healthy, receiving(default="500") as failing:
        async with webhook_container(settings, database_url, clock=clock) as c:
            for url in (healthy.url, failing.url):
                await c.webhooks.create_endpoint(
                    merchant(merchant_id), Origin("127.0.0.1"), url=url, enabled_events=["*"]
                )
            for _ in range(3):
                pay(api, key)
            async with WebhookJobs(c.webhooks, database_url, concurrency=4) as jobs:
                assert await relay_and_queue(c.webhooks, jobs, batch=2) == 3
                await jobs.run_worker(wait=False)
                await sweep(c.webhooks, jobs)
                assert _sample("clearport_webhook_pending_deliveries") == 3
                assert _sample("clearport_webhook_retry_queue_depth") == 3
                assert _sample("clearport_webhook_oldest_undelivered_event_age_seconds") >= 0
                # The retries come due: the sweep queues the endpoint again.
                clock.offset += timedelta(hours=1)
                failing.default = "ok"
                await sweep(c.webhooks, jobs)
                await jobs.run_worker(wait=False)
                await sweep(c.webhooks, jobs)
    assert len(healthy.received) == 3 and len(failing.received) == 6
    assert _sample("clearport_webhook_pending_deliveries") == 0
    assert _sample("clearport_webhook_retry_queue_depth") == 0
    assert _sample("clearport_webhook_oldest_undelivered_event_age_seconds") == 0
    assert _sample("clearport_webhook_deliveries_total", outcome="succeeded") - succeeded == 6
    assert _sample("clearport_webhook_deliveries_total", outcome="retrying") - retrying == 3
    with pg(api.database_url) as conn:  # finished jobs do not pile up in the queue's table
        assert conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'webhooks'"
            " AND status = 'succeeded'"
        ).fetchone() == (0,)
