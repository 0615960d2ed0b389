"""Crash test: a real `clearport serve` killed with SIGKILL mid-burst, restarted, janitor run,
then every request retried under its Idempotency-Key. Payments go to the HTTP acquirer simulator
in a process of its own, which keeps its own records.

Every 201 the client received must exist, each Idempotency-Key must stand for exactly one payment
(a retry answers with it, never creates a second), no attempt may stay pending, every captured
payment must have exactly one capture posting, and the ledger must balance (and agree with the
payments' captured and refunded amounts). And the processor's records agree with ours, as the
money simulation checks them (decision 1100): no approval standing there that we do not hold
(lost), no payment standing twice (doubled), every payment we hold standing there with the
amount we captured.
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

from tests.e2e.simulators import Simulator, simulator, standing_authorizations
from tests.support import TEST_SERVER_SECRET, Api, free_port, pg

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).parent / "clearport")
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def _env(api: Api, data_dir: Path, connector: str) -> dict[str, str]:
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
        # Payments go to this test's acquirer alone, whatever other tests registered.
        "CLEARPORT_CONNECTORS_DEFAULT_ORDER": connector,
    }


def _start(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Generous: importing the app takes tens of seconds on a loaded 2-core machine.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def test_kill_9_mid_burst_then_janitor(api: Api, tmp_path: Path) -> None:
    with simulator("http", api.database_url, tmp_path, name=f"crash-{uuid.uuid4().hex[:8]}") as sim:
        _kill_9_mid_burst_then_janitor(api, tmp_path, sim)


def _register(base: str, admin: str, sim: Simulator) -> None:
    kind, settings = sim.settings(timeout_ms=3000)
    r = httpx.post(
        f"{base}/v1/connectors",
        json={"name": sim.name, "type": kind, "settings": settings},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text


def _kill_9_mid_burst_then_janitor(api: Api, tmp_path: Path, sim: Simulator) -> None:
    merchant_id, key = api.merchant()
    env = _env(api, tmp_path, sim.name)
    port = free_port()
    proc = _start(env, port)
    base = f"http://127.0.0.1:{port}"
    _register(base, api.operator(), sim)
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
    _agrees_with_the_processor(api, merchant_id, sim)


def _agrees_with_the_processor(api: Api, merchant_id: str, sim: Simulator) -> None:
    """Lost approvals / duplicate charges / amounts that differ: none."""
    standing = standing_authorizations(sim)
    records = sim.records()
    with pg(api.database_url) as conn:
        held = {
            row[0]: (row[1], row[2])
            for row in conn.execute(
                "SELECT auth_attempt_id, id, amount_captured FROM payments "
                "WHERE merchant_id = %s AND status IN ('authorized', 'captured', 'refunded')",
                (merchant_id,),
            )
        }
        attempt_payment = dict(
            conn.execute(
                "SELECT id, payment_id FROM payment_attempts "
                "WHERE merchant_id = %s AND operation = 'authorize'",
                (merchant_id,),
            ).fetchall()
        )
    lost = sorted(set(standing) - set(held))
    per_payment: dict[str, int] = {}
    for reference in standing:
        payment = attempt_payment.get(reference, reference)
        per_payment[payment] = per_payment.get(payment, 0) + 1
    doubled = sorted(p for p, n in per_payment.items() if n > 1)
    differing = sorted(
        payment
        for reference, (payment, captured) in held.items()
        if reference not in standing or records[reference]["captured"] != captured
    )
    assert (lost, doubled, differing) == ([], [], [])
    assert held, "payments reached the processor"
