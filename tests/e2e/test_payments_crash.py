"""Crash test: a real `clearport serve` killed with SIGKILL mid-burst, restarted, janitor run,
then every request retried under its Idempotency-Key.

Every 201 the client received must exist, each Idempotency-Key must stand for exactly one payment
(a retry answers with it, never creates a second), no attempt may stay pending, every captured
payment must have exactly one capture posting, and the ledger must balance (and agree with the
payments' captured and refunded amounts).
"""

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


def _env(api: Api, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": api.database_url,
        "CLEARPORT_DATA_DIR": str(data_dir),
        "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
        "CLEARPORT_SIMULATOR_LATENCY_S": "0.01",
        "CLEARPORT_RATE_LIMIT_REQUESTS": "100000",
        "CLEARPORT_LOG_LEVEL": "WARNING",
        # A key the crash left in progress may be taken over by its retry at once.
        "CLEARPORT_IDEMPOTENCY_LOCK_TIMEOUT_S": "0",
    }


def _start(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def test_kill_9_mid_burst_then_janitor(api: Api, tmp_path: Path) -> None:
    merchant_id, key = api.merchant()
    env = _env(api, tmp_path)
    port = free_port()
    proc = _start(env, port)
    base = f"http://127.0.0.1:{port}"
    created: list[dict[str, Any]] = []
    captured: list[str] = []
    sent: dict[str, dict[str, Any]] = {}  # Idempotency-Key -> body of every payment sent
    answered: dict[str, str] = {}  # Idempotency-Key -> the payment its 201 named
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=base, timeout=5) as http:
            i = 0
            while not stop.is_set():
                i += 1
                idempotency_key = str(uuid.uuid4())
                headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency_key}
                body = {
                    "amount": 100 + i,
                    "currency": "usd",
                    "source": {"card": CARD},
                    "capture": (i + n) % 3 == 0,
                }
                with lock:
                    sent[idempotency_key] = body
                try:
                    r = http.post("/v1/payments", json=body, headers=headers)
                    if r.status_code == 201:
                        with lock:
                            created.append(r.json())
                            answered[idempotency_key] = r.json()["id"]
                        if r.json()["status"] == "authorized" and i % 2 == 0:
                            headers["Idempotency-Key"] = str(uuid.uuid4())
                            c = http.post(f"/v1/payments/{r.json()['id']}/capture", headers=headers)
                            if c.status_code == 200:
                                with lock:
                                    captured.append(r.json()["id"])
                except httpx.HTTPError:
                    return

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(created) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-burst: requests are in flight
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(created) >= 150

    with pg(api.database_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM payment_attempts WHERE status = 'pending'"
        ).fetchone()
    assert left is not None
    proc = _start(env, port)
    try:
        janitor = subprocess.run(
            [CLI, "janitor", "--grace", "0"], env=env, capture_output=True, timeout=120
        )
        assert janitor.returncode == 0, janitor.stderr.decode()[-2000:]
        # It resolved exactly what the crash left pending (how many varies from run to run).
        assert json.loads(janitor.stdout)["resolved"] == left[0]
        assert (
            httpx.get(
                f"{base}/v1/payments?limit=1", headers={"Authorization": f"Bearer {key}"}
            ).status_code
            == 200
        )
        # Every request again, under its key: the ones the crash cut off recover their payment
        # (or make it, if it never was), the answered ones replay theirs.
        payment_of_key: dict[str, str] = {}
        with httpx.Client(base_url=base, timeout=30) as http:
            for idempotency_key, body in sent.items():
                headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency_key}
                r = http.post("/v1/payments", json=body, headers=headers)
                assert r.status_code == 201, r.text
                payment_of_key[idempotency_key] = r.json()["id"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    with pg(api.database_url) as conn:
        ids = [p["id"] for p in created]
        rows = dict(
            conn.execute("SELECT id, status FROM payments WHERE id = ANY(%s)", (ids,)).fetchall()
        )
        pending = conn.execute(
            "SELECT count(*) FROM payment_attempts WHERE status = 'pending'"
        ).fetchone()
        in_flight = conn.execute(
            "SELECT count(*) FROM payments "
            "WHERE status = 'pending' OR pending_operation IS NOT NULL"
        ).fetchone()
        totals = conn.execute(
            "SELECT sum(debits_posted), sum(credits_posted) FROM ledger_accounts"
        ).fetchone()
        merchant_pending = conn.execute(
            "SELECT coalesce(sum(credits_posted - debits_posted), 0) FROM ledger_accounts "
            "WHERE owner = %s AND kind = 'pending'",
            (merchant_id,),
        ).fetchone()
        expected = conn.execute(
            "SELECT coalesce(sum(amount_captured - amount_refunded), 0) FROM payments "
            "WHERE merchant_id = %s",
            (merchant_id,),
        ).fetchone()
        merchant_payments = {
            row[0]
            for row in conn.execute(
                "SELECT id FROM payments WHERE merchant_id = %s", (merchant_id,)
            )
        }
        bound = dict(
            conn.execute(
                "SELECT key, resource_id FROM idempotency_keys "
                "WHERE principal_id = %s AND state = 'completed' AND key = ANY(%s)",
                (merchant_id, list(sent)),
            ).fetchall()
        )
        postings = conn.execute(
            "SELECT p.id, p.status, p.amount_captured, count(t.id), coalesce(sum(t.amount), 0) "
            "FROM payments p LEFT JOIN ledger_transfers t "
            "ON t.source = p.id AND t.code = 'capture' "
            "WHERE p.merchant_id = %s GROUP BY p.id",
            (merchant_id,),
        ).fetchall()
    assert len(ids) == len(set(ids))
    assert set(rows) == set(ids), "every 201 exists"
    # One payment per Idempotency-Key: a retry answers with the payment its first 201 named,
    # no two keys share one, and the merchant has no payment beyond those the keys stand for.
    for idempotency_key, payment_id in answered.items():
        assert payment_of_key[idempotency_key] == payment_id
    assert len(set(payment_of_key.values())) == len(sent)
    assert merchant_payments == set(payment_of_key.values())
    assert bound == payment_of_key
    # One capture posting per captured payment, of the captured amount; none for the others.
    for payment_id, status, amount_captured, count, posted in postings:
        if status in ("captured", "refunded"):
            assert (count, posted) == (1, amount_captured), payment_id
        else:
            assert (count, amount_captured) == (0, 0), payment_id
    for pid in captured:
        assert rows[pid] == "captured"
    assert pending == (0,)
    assert in_flight == (0,)
    assert totals is not None and totals[0] == totals[1]
    assert merchant_pending == expected
