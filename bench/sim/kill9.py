"""kill -9 under real HTTP load: the API once, the worker once, then the processor's records
against ours (issue 17's "Also").

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.sim.kill9

A scratch database on DATABASE_URL's server; `clearport simulate http` (its own process, its
own records), `clearport serve --workers 2` and `clearport worker`; wrk (bounded: `--seconds`,
16 connections) posts sales with a unique Idempotency-Key each (bench/authorize/authorize.lua).
A third of the way in the API is killed with SIGKILL and started again; two thirds in, the
worker. When wrk is done the worker's janitor settles what the crashes left pending; then
prints lost approvals (standing at the processor, not held by us), duplicate charges (a payment
standing twice there, or two payments for one key) and ledger imbalance (currencies that do not
sum to zero, accounts that differ from their postings): 0 / 0 / 0 is the bar.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from clearport.simulation.database import SimulationStore, server_url

CLI = str(Path(sys.executable).parent / "clearport")
LUA = Path(__file__).resolve().parent.parent / "authorize" / "authorize.lua"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [CLI, *args],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _cli_json(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([CLI, *args], env=env, check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout))


def _wait_healthy(url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the process and its uvicorn workers, mid-request
    proc.wait()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _kill(proc)


def _findings(url: str, schema: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        standing = {
            r[0]
            for r in conn.execute(
                f"SELECT reference FROM {schema}.transactions "
                "WHERE kind IN ('authorize', 'sale') AND state IN ('approved', 'captured')"
            )
        }
        held = {
            r[0]
            for r in conn.execute(
                "SELECT auth_attempt_id FROM payments "
                "WHERE status IN ('authorized', 'captured', 'refunded')"
            )
        }
        payment_of = dict(
            conn.execute(
                "SELECT id, payment_id FROM payment_attempts WHERE operation = 'authorize'"
            ).fetchall()
        )
        twice_per_key = conn.execute(
            "SELECT count(*) FROM (SELECT resource_id FROM idempotency_keys "
            "WHERE resource_id IS NOT NULL GROUP BY resource_id HAVING count(*) > 1) x"
        ).fetchone()
        counts = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'captured') FROM payments"
        ).fetchone()
        pending = conn.execute(
            "SELECT count(*) FROM payment_attempts WHERE status = 'pending'"
        ).fetchone()
    per_payment: dict[str, int] = {}
    for reference in standing:
        payment = payment_of.get(reference, reference)
        per_payment[payment] = per_payment.get(payment, 0) + 1

    async def imbalance() -> list[str]:
        store = await SimulationStore.connect(url)
        try:
            return await store.ledger_imbalances()
        finally:
            await store.close()

    assert counts is not None and pending is not None and twice_per_key is not None
    return {
        "payments": counts[0],
        "captured": counts[1],
        "pending_attempts": pending[0],
        "lost_approvals": len(standing - held),
        "duplicate_charges": sum(1 for n in per_payment.values() if n > 1) + twice_per_key[0],
        "ledger_imbalance": len(asyncio.run(imbalance())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"clearport_kill9_{os.getpid()}"
    admin = server_url(base, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server_url(base, name)
    work = Path(tempfile.mkdtemp(prefix="clearport-kill9-"))
    log = work / "processes.log"
    schema = "sim_kill9"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CLEARPORT_DATA_DIR": str(work),
        "CLEARPORT_SECRET_KEY": secrets.token_hex(32),
        "CLEARPORT_RATE_LIMIT_REQUESTS": "1000000000",
        "CLEARPORT_LOG_LEVEL": "WARNING",
        "CLEARPORT_CONNECTORS_DEFAULT_ORDER": "acq",
        "CLEARPORT_JANITOR_GRACE_S": "2",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
        merchant = _cli_json(["merchants", "create", "--name", "Kill9", "--json"], env)
        operator = _cli_json(["operators", "create", "--role", "admin", "--json"], env)
        sim_port, api_port = _free_port(), _free_port()
        procs.append(
            _start(
                [
                    "simulate",
                    "http",
                    "--port",
                    str(sim_port),
                    "--database-url",
                    url,
                    "--name",
                    "acq",
                    "--schema",
                    schema,
                ],
                env,
                log,
            )
        )
        api = _start(["serve", "--workers", "2", "--port", str(api_port)], env, log)
        target = f"http://127.0.0.1:{api_port}"
        _wait_healthy(target)
        r = httpx.post(
            f"{target}/v1/connectors",
            json={
                "name": "acq",
                "type": "http_acquirer",
                "settings": {"url": f"http://127.0.0.1:{sim_port}", "timeout_ms": 3000},
            },
            headers={"Authorization": f"Bearer {operator['secret']}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        worker = _start(["worker"], env, log)
        wrk = subprocess.Popen(
            ["wrk", "-t2", "-c16", f"-d{args.seconds}s", "-s", str(LUA), target],
            env={**env, "CP_KEY": merchant["key"]["secret"], "CP_CAPTURE": "true"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(args.seconds / 3)
        _kill(api)
        print(f"API killed with SIGKILL at {args.seconds / 3:.0f} s; restarting", flush=True)
        api = _start(["serve", "--workers", "2", "--port", str(api_port)], env, log)
        _wait_healthy(target)
        time.sleep(max(0.0, args.seconds / 3))
        _kill(worker)
        print("worker killed with SIGKILL; restarting", flush=True)
        worker = _start(["worker"], env, log)
        out, _ = wrk.communicate(timeout=args.seconds * 10 + 300)
        print(out.strip().splitlines()[-3:] if out else "wrk said nothing", flush=True)
        deadline = time.monotonic() + 300
        found = _findings(url, schema)
        while found["pending_attempts"] and time.monotonic() < deadline:
            time.sleep(2)  # the worker's janitor settles what the crashes left pending
            found = _findings(url, schema)
        procs += [api, worker]
        print(json.dumps(found))
        print(
            "lost approvals / duplicate charges / ledger imbalance: "
            f"{found['lost_approvals']} / {found['duplicate_charges']} / "
            f"{found['ledger_imbalance']}"
        )
        bad = found["lost_approvals"] or found["duplicate_charges"] or found["ledger_imbalance"]
        sys.exit(1 if bad or found["pending_attempts"] else 0)
    finally:
        for proc in procs:
            _stop(proc)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
