"""Webhook delivery: events delivered per second by 2 `clearport worker` processes to a local
receiver (loopback, the development switch on), and the latency from an event's commit to its
arrival (p50/p99); beside, in the same run, the receiver's own ceiling: the same POSTs sent
straight from one process with httpx, no database, no signing.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.webhooks
    .venv/bin/python -m bench.webhooks --events 5000 --latency-s 10     # a quick look

A fresh database is created on DATABASE_URL's server (and dropped). `--endpoints` merchants each
have one endpoint subscribed to everything; the throughput phase commits `--events` events
(spread over the merchants, ~1 KB each, like a payment's) in one transaction while the workers
run, and times them until the last one has arrived. The latency phase commits one event per
transaction at `--rate` per second for `--latency-s` seconds and measures each from its commit
(as the committing process saw it) to its arrival (as the receiver saw it), the same clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from psycopg import sql
from sqlalchemy.engine import make_url

from clearport.access.domain import SYSTEM_CLI, Origin, Principal, PrincipalKind
from clearport.config import Settings
from clearport.core.ids import new_id
from clearport.db import migrate
from clearport.merchants.service import NewMerchant
from clearport.webhooks.settings import WebhookSettings
from clearport.wiring import build_container

CLI = str(Path(sys.executable).parent / "clearport")
PAYMENT: dict[str, Any] = {
    "object": "payment",
    "status": "captured",
    "amount": 2599,
    "currency": "usd",
    "amount_captured": 2599,
    "amount_refunded": 0,
    "card": {
        "brand": "visa",
        "bin": "42424242",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2030,
        "fingerprint": "h4fmeq3ohbkxgyunbt5xldwylq",
    },
    "auth_code": "123456",
    "network_reference": "SIM0123456789ABCDEF",
    "decline_code": None,
    "connector": "simulator",
    "routing": {"rule": "default", "candidates": ["simulator"], "reason": "only connector"},
    "reference": "order-1234",
    "metadata": {"order": "1234", "channel": "web"},
    "created": 1764000000,
    "authorized": 1764000000,
    "captured": 1764000001,
}


class Receiver:
    """A minimal ASGI receiver (uvicorn, httptools) in a thread: the arrival time of each
    event id, by wall clock, and how many times each came."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            interface="asgi3",
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        event_id = dict(scope["headers"]).get(b"clearport-event-id", b"").decode()
        now = time.time()
        with self.lock:
            self.count += 1
            self.arrived.setdefault(event_id, now)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def start(self) -> Receiver:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _database(base: str) -> str:
    name = "clearport_bench_webhooks"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(base).set(database=name).render_as_string(hide_password=False)


def _drop(base: str) -> None:
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS clearport_bench_webhooks WITH (FORCE)")


async def _endpoints(settings: Settings, url: str, count: int, target: str) -> list[str]:
    container = build_container(settings, url)
    await container.start(listen=False)
    merchants = []
    try:
        for i in range(count):
            m = await container.merchants.create(
                SYSTEM_CLI, Origin(), NewMerchant(f"Bench {i}", "US", "5999", "usd")
            )
            owner = Principal(PrincipalKind.MERCHANT, key_id="bench", merchant_id=m.id)
            await container.webhooks.create_endpoint(
                owner, Origin(), url=target, enabled_events=["*"]
            )
            merchants.append(m.id)
    finally:
        await container.stop()
    return merchants


def _rows(merchants: list[str], count: int) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for i in range(count):
        pay_id = new_id("pay")
        data = json.dumps({"object": {**PAYMENT, "id": pay_id}})
        rows.append(
            (new_id("evt"), merchants[i % len(merchants)], "payment.captured", pay_id, data)
        )
    return rows


def _commit_all(url: str, rows: list[tuple[str, str, str, str, str]]) -> float:
    """All rows in one transaction (COPY: the relay trigger fires for it like for an INSERT);
    the wall time right after the commit."""
    with psycopg.connect(url) as conn:
        with conn.cursor().copy(
            "COPY events (id, merchant_id, type, object_id, data, created_at) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row((*row, "now"))
        conn.commit()
        return time.time()


def _wait_for(receiver: Receiver, ids: list[str], timeout_s: float) -> float:
    """When the last of `ids` arrived (receiver's clock). Polls cheaply, so as not to take the
    receiver's thread's time (the times come from the receiver, not from this loop)."""
    deadline = time.monotonic() + timeout_s
    wanted = set(ids)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        with receiver.lock:
            if len(receiver.arrived) >= len(wanted) and wanted <= receiver.arrived.keys():
                return max(receiver.arrived[i] for i in wanted)
    raise SystemExit(f"not every event arrived within {timeout_s} s")


def _baseline(target: str, count: int, processes: int, concurrency: int) -> float:
    """The receiver's ceiling with as many sending processes as workers: `count` POSTs of an
    event-sized body in all, `concurrency` at a time in each process, timed inside each (not
    its start-up): the sum of their rates."""
    share = count // processes
    command = [sys.executable, "-m", "bench.webhooks", "baseline", target, str(share)]
    senders = [
        subprocess.Popen([*command, str(concurrency), f"p{n}"], stdout=subprocess.PIPE, text=True)
        for n in range(processes)
    ]
    rates = [float(sender.communicate()[0]) for sender in senders]
    if any(sender.returncode != 0 for sender in senders):
        raise SystemExit("a baseline sender failed")
    return sum(rates)


async def _post_directly(target: str, count: int, concurrency: int, prefix: str) -> float:
    body = json.dumps({"id": "evt_x", "data": {"object": PAYMENT}}).encode()
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=10) as client:

        async def one(n: int) -> None:
            async with gate:
                headers = {"clearport-event-id": f"{prefix}{n}"}
                r = await client.post(target, content=body, headers=headers)
                r.raise_for_status()

        await one(-1)  # the connection, before the clock starts
        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(count)))
        return count / (time.perf_counter() - started)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    if sys.argv[1:2] == ["baseline"]:
        target, count, concurrency, prefix = (
            sys.argv[2],
            int(sys.argv[3]),
            int(sys.argv[4]),
            sys.argv[5],
        )
        print(asyncio.run(_post_directly(target, count, concurrency, prefix)))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--endpoints", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=50.0, help="latency phase, events/s")
    parser.add_argument("--latency-s", type=float, default=30.0)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL")
    if not base:
        sys.exit("set DATABASE_URL to a PostgreSQL server where databases may be created")
    url = _database(base)
    migrate.upgrade(url)
    data_dir = Path(tempfile.mkdtemp(prefix="clearport-bench-webhooks-"))
    secret = secrets.token_hex(32)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CLEARPORT_DATA_DIR": str(data_dir),
        "CLEARPORT_SECRET_KEY": secret,
        "CLEARPORT_LOG_LEVEL": "WARNING",
        "CLEARPORT_WEBHOOKS_ALLOW_LOOPBACK": "1",
    }
    settings = Settings(
        data_dir=data_dir,
        secret_key=secret,  # type: ignore[arg-type]
        webhooks=WebhookSettings(allow_loopback=True),
    )
    receiver = Receiver().start()
    target = f"http://127.0.0.1:{receiver.port}/hooks"
    workers: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {"workers": args.workers, "endpoints": args.endpoints}
    try:
        merchants = asyncio.run(_endpoints(settings, url, args.endpoints, target))
        results["baseline_direct_posts_per_s"] = round(
            _baseline(target, min(args.events, 10_000), args.workers, 32), 1
        )
        workers = [
            subprocess.Popen([CLI, "worker"], env=env, start_new_session=True)
            for _ in range(args.workers)
        ]
        warm = _rows(merchants, args.endpoints * 10)  # workers up, connections open
        _commit_all(url, warm)
        _wait_for(receiver, [r[0] for r in warm], 120)

        rows = _rows(merchants, args.events)
        committed = _commit_all(url, rows)
        last = _wait_for(receiver, [r[0] for r in rows], 600)
        elapsed = last - committed
        results["events"] = args.events
        results["delivered_per_s"] = round(args.events / elapsed, 1)
        results["ratio_to_baseline"] = round(
            results["delivered_per_s"] / results["baseline_direct_posts_per_s"], 2
        )

        latencies: list[float] = []
        sent: dict[str, float] = {}
        interval = 1.0 / args.rate
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.monotonic()
            n = 0
            while time.monotonic() - started < args.latency_s:
                (row,) = _rows([merchants[n % len(merchants)]], 1)
                conn.execute(
                    "INSERT INTO events (id, merchant_id, type, object_id, data, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, now())",
                    row,
                )
                sent[row[0]] = time.time()
                n += 1
                time.sleep(max(0.0, started + n * interval - time.monotonic()))
        _wait_for(receiver, list(sent), 120)
        with receiver.lock:
            latencies = [(receiver.arrived[i] - t) * 1000 for i, t in sent.items()]
            duplicates = receiver.count - len(receiver.arrived)
        results["latency_events"] = len(latencies)
        results["latency_rate_per_s"] = args.rate
        results["commit_to_delivery_p50_ms"] = round(_percentile(latencies, 0.50), 1)
        results["commit_to_delivery_p99_ms"] = round(_percentile(latencies, 0.99), 1)
        results["commit_to_delivery_mean_ms"] = round(statistics.fmean(latencies), 1)
        results["duplicates"] = duplicates
    finally:
        for proc in workers:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in workers:
            proc.wait(30)
        receiver.stop()
        _drop(base)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
