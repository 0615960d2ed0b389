"""Post N transfers in batches through `LedgerService.post`, every transfer touching one hot
account (the platform's processor receivable), with durable settings; then run pgbench TPC-B
(8 clients, -M prepared, scale 50) on the same server and print both and their ratio.

    .venv/bin/python -m bench.ledger            # DATABASE_URL's server, else embedded pgserver
    .venv/bin/python -m bench.ledger --transfers 100000 --skip-pgbench   # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from clearport.core.clock import SystemClock
from clearport.db import migrate
from clearport.db.database import Database
from clearport.ledger.domain import AccountKind, AccountRef, TransferRequest
from clearport.ledger.service import LedgerService
from clearport.ledger.store import PgLedgerStore


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _pgbench_binary(embedded_bin: Path | None) -> str:
    candidates = []
    if embedded_bin is not None:
        candidates.append(str(embedded_bin / "pgbench"))
    candidates += ["/usr/lib/postgresql/15/bin/pgbench", "/usr/bin/pgbench"]
    found = shutil.which("pgbench")
    if found:
        candidates.append(found)
    for c in candidates:
        if Path(c).exists():
            return c
    raise SystemExit("pgbench not found")


async def _post_all(url: str, total: int, batch: int, posters: int, merchants: int) -> float:
    db = Database(url, min_size=posters, max_size=posters)
    await db.open()
    ledger = LedgerService(db, PgLedgerStore(), SystemClock())
    hot = AccountRef("platform", AccountKind.PROCESSOR_RECEIVABLE, "usd")
    credits = [
        AccountRef(f"mer_BENCH{i:021d}", AccountKind.PENDING, "usd") for i in range(merchants)
    ]
    batches = total // batch
    queue: asyncio.Queue[int] = asyncio.Queue()
    for b in range(batches):
        queue.put_nowait(b)

    async def poster() -> None:
        while True:
            try:
                b = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            transfers = [
                TransferRequest(
                    id=f"bench:{b}:{i}",
                    debit=hot,
                    credit=credits[(b * batch + i) % merchants],
                    amount_minor=100 + i,
                    currency="usd",
                    code="capture",
                    source=f"bench_{b}_{i}",
                )
                for i in range(batch)
            ]
            async with db.transaction() as tx:
                await ledger.post(tx, transfers)

    try:
        # warm the accounts (opened on first use) outside the timing
        async with db.transaction() as tx:
            await ledger.post(
                tx,
                [
                    TransferRequest(f"warm:{i}", hot, c, 1, "usd", "capture")
                    for i, c in enumerate(credits)
                ],
            )
        start = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(posters)))
        elapsed = time.perf_counter() - start
        async with db.transaction() as tx:
            acct = await ledger.account(tx, hot)
        expected = merchants + sum(100 + i for i in range(batch)) * batches
        assert acct is not None and acct.balance == expected, (acct, expected)
        return elapsed
    finally:
        await db.close()


def _pgbench(binary: str, url: str, scale: int, clients: int, threads: int, seconds: int) -> float:
    u = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    # pgserver's URI names a socket directory in `?host=`, not a host.
    host = u.host or str(u.query.get("host") or "127.0.0.1")
    conn = ["-h", host, "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    subprocess.run(
        [binary, *conn, "-i", "-q", "-s", str(scale), u.database or "postgres"],
        check=True,
        env=env,
        capture_output=True,
    )
    out = subprocess.run(
        [
            binary,
            *conn,
            "-c",
            str(clients),
            "-j",
            str(threads),
            "-T",
            str(seconds),
            "-M",
            "prepared",
            u.database or "postgres",
        ],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    m = re.search(r"tps = ([0-9.]+) \((?:without initial connection time|excluding)", out)
    if m is None:
        raise SystemExit(f"could not parse pgbench output:\n{out}")
    return float(m.group(1))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.ledger",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--transfers", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--posters", type=int, default=4, help="concurrent connections posting")
    ap.add_argument("--merchants", type=int, default=100, help="credit-side accounts")
    ap.add_argument("--skip-pgbench", action="store_true")
    ap.add_argument("--pgbench-seconds", type=int, default=30)
    ap.add_argument("--pgbench-scale", type=int, default=50)
    args = ap.parse_args(argv)

    server: Any = None
    base = os.environ.get("DATABASE_URL")
    embedded_bin: Path | None = None
    if not base:
        import pgserver

        server = pgserver.get_server(
            Path(tempfile.mkdtemp(prefix="clearport-bench-")), cleanup_mode="stop"
        )
        base = server.get_uri("postgres")
        embedded_bin = Path(pgserver.__file__).parent / "pginstall" / "bin"
    tag = secrets.token_hex(4)
    ledger_db, pgbench_db = f"clearport_bench_{tag}", f"clearport_pgbench_{tag}"
    with psycopg.connect(base, autocommit=True) as conn:
        settings = {
            k: conn.execute(f"SHOW {k}").fetchone()[0]  # type: ignore[index]
            for k in ("fsync", "synchronous_commit", "full_page_writes", "server_version")
        }
        if settings["fsync"] != "on" or settings["synchronous_commit"] != "on":
            raise SystemExit(f"refusing a non-durable server: {settings}")
        for name in (ledger_db, pgbench_db):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = _with_database(base, ledger_db)
        migrate.upgrade(url)
        elapsed = asyncio.run(
            _post_all(url, args.transfers, args.batch, args.posters, args.merchants)
        )
        posted = args.transfers // args.batch * args.batch
        ledger_tps = posted / elapsed
        result: dict[str, Any] = {
            "server": settings,
            "transfers": posted,
            "batch": args.batch,
            "posters": args.posters,
            "seconds": round(elapsed, 2),
            "transfers_per_s": round(ledger_tps),
        }
        if not args.skip_pgbench:
            tps = _pgbench(
                _pgbench_binary(embedded_bin),
                _with_database(base, pgbench_db),
                args.pgbench_scale,
                8,
                2,
                args.pgbench_seconds,
            )
            result["pgbench_tpcb_tps"] = round(tps)
            result["ratio"] = round(ledger_tps / tps, 1)
            result["target_ratio"] = 25
        print(json.dumps(result, indent=2))
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            for name in (ledger_db, pgbench_db):
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        if server is not None:
            server.cleanup()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
