"""A real `clearport worker` killed with SIGKILL in the middle of a delivery, and another
started: every event is delivered at least once, and only the batch that was in flight may
arrive twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from clearport.access.domain import Origin
from clearport.config import Settings
from tests.integration.test_payments_api import pay
from tests.support import TEST_SERVER_SECRET, Api, pg
from tests.webhook_support import merchant, receiving, webhook_container

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).parent / "clearport")
EVENTS = 12
BATCH = 3


def _worker(settings: Settings, database_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CLEARPORT_DATA_DIR": str(settings.data_dir),  # the keyring that sealed the secret
        "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
        "CLEARPORT_LOG_LEVEL": "WARNING",
        "CLEARPORT_WORKER_INTERVAL_S": "0.2",
        "CLEARPORT_WEBHOOKS_ALLOW_LOOPBACK": "1",
        "CLEARPORT_WEBHOOKS_TIMEOUT_S": "1",
        "CLEARPORT_WEBHOOKS_BATCH_SIZE": str(BATCH),
        "CLEARPORT_WEBHOOKS_ENDPOINT_CONCURRENCY": "1",
        "CLEARPORT_WEBHOOKS_RELAY_INTERVAL_S": "0.05",
    }
    return subprocess.Popen(
        [CLI, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _wait(condition: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


async def test_a_worker_killed_mid_delivery_loses_nothing(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    with receiving(plan=["hang"]) as receiver:
        async with webhook_container(settings, database_url) as c:
            await c.webhooks.create_endpoint(
                merchant(merchant_id), Origin("127.0.0.1"), url=receiver.url, enabled_events=["*"]
            )
        for _ in range(EVENTS):
            pay(api, key)
        first = _worker(settings, database_url)
        try:
            _wait(lambda: len(receiver.received) >= 1, 60)  # the first request hangs ...
        finally:
            first.send_signal(signal.SIGKILL)  # ... and its worker dies with it
            first.wait(10)
        in_flight = len(receiver.received)
        receiver.release.set()
        second = _worker(settings, database_url)
        try:
            _wait(lambda: len(set(receiver.event_ids())) == EVENTS, 90)
            _wait(lambda: _pending(api) == 0, 30)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    with pg(api.database_url) as conn:
        events = {r[0] for r in conn.execute("SELECT id FROM events")}
        statuses = conn.execute("SELECT DISTINCT status FROM webhook_deliveries").fetchall()
    received = Counter(receiver.event_ids())
    assert set(received) == events and len(events) == EVENTS
    assert statuses == [("succeeded",)]
    # The hanging request was sent again; duplicates only from the batch the first worker
    # held when it died.
    assert received[receiver.received[0].headers["clearport-event-id"]] >= 2
    assert sum(n - 1 for n in received.values()) <= BATCH
    assert in_flight <= BATCH


def _pending(api: Api) -> int:
    with pg(api.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"
        ).fetchone()
    assert row is not None
    return int(row[0])
