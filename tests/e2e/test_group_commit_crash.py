"""kill -9 with group commit on (decision 0912): nothing acknowledged is lost.

A real `clearport serve` whose answers wait up to 20 ms to share a commit (so many requests sit
in a batch at any moment) is killed with SIGKILL mid-burst. Every authorization the clients got
a 201 for must be in the database as it was answered: the payment authorized, its attempt
succeeded, its Idempotency-Key completed with that very answer. And the burst did share commits
(fewer answering transactions than answers), so the test is about batching, not about a server
that never batched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import TEST_SERVER_SECRET, Api, free_port, pg

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).parent / "clearport")
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def test_kill_9_with_group_commit_loses_nothing_acknowledged(api: Api, tmp_path: Path) -> None:
    merchant_id, key = api.merchant()
    env = {
        **os.environ,
        "DATABASE_URL": api.database_url,
        "CLEARPORT_DATA_DIR": str(tmp_path),
        "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
        "CLEARPORT_LOG_LEVEL": "WARNING",
        "CLEARPORT_CONNECTORS_DEFAULT_ORDER": "simulator",
        "CLEARPORT_SIMULATOR_LATENCY_S": "0",
        "CLEARPORT_RATE_LIMIT_REQUESTS": "1000000",
        "CLEARPORT_GROUP_COMMIT_MAX_WAIT_MS": "20",
        "CLEARPORT_GROUP_COMMIT_MAX_BATCH": "64",
    }
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    answered: dict[str, dict[str, Any]] = {}  # Idempotency-Key -> the 201's body
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            while not stop.is_set():
                idempotency_key = str(uuid.uuid4())
                headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency_key}
                body = {"amount": 1234, "currency": "usd", "source": {"card": CARD}}
                try:
                    r = http.post("/v1/payments", json=body, headers=headers)
                except httpx.HTTPError:
                    return
                if r.status_code == 201:
                    with lock:
                        answered[idempotency_key] = r.json()

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(answered) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-burst: batches are waiting and committing
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(answered) >= 200

    with pg(api.database_url) as conn:
        ids = [a["id"] for a in answered.values()]
        payments = dict(
            conn.execute("SELECT id, status FROM payments WHERE id = ANY(%s)", (ids,)).fetchall()
        )
        # The transaction that last wrote each payment row: its answer's.
        answer_transactions = conn.execute(
            "SELECT count(DISTINCT xmin::text) FROM payments WHERE id = ANY(%s)", (ids,)
        ).fetchone()
        attempts = dict(
            conn.execute(
                "SELECT payment_id, status FROM payment_attempts WHERE payment_id = ANY(%s)",
                (ids,),
            ).fetchall()
        )
        stored = {
            row[0]: (row[1], row[2], bytes(row[3]) if row[3] is not None else None)
            for row in conn.execute(
                "SELECT key, state, response_status, response_body FROM idempotency_keys "
                "WHERE principal_id = %s AND key = ANY(%s)",
                (merchant_id, list(answered)),
            )
        }
    for idempotency_key, shown in answered.items():
        assert shown["status"] == "authorized"
        assert payments[shown["id"]] == "authorized", shown["id"]
        assert attempts[shown["id"]] == "succeeded", shown["id"]
        state, status, body = stored[idempotency_key]
        assert (state, status) == ("completed", 201)
        assert body is not None and json.loads(body)["id"] == shown["id"]
    # The answers shared commits: unbatched, each payment's answer is a transaction of its own.
    assert answer_transactions is not None
    assert answer_transactions[0] < 0.9 * len(answered), (answer_transactions, len(answered))
