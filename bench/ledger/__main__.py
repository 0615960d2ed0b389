"""The ledger with every transfer on one hot account (the platform's processor receivable),
beside pgbench TPC-B on the same server, in interleaved rounds (decision 0913).

Each round, back to back on one durable server: (1) batched: transfers posted through
`LedgerService.post` in batches of 1,000 by 4 concurrent posters; (2) one transfer per
transaction (a sale's or capture's shape) from 32 connections, each crediting its own merchant,
so the hot account is the only row they share, first with the account sharded (the default) and
then with `clearport.ledger_shards = 1` (one row, as before decision 0913); (3) pgbench TPC-B
(8 clients, -M prepared, scale 50). Interleaving keeps each ratio's figures seconds apart: on a
shared machine the load moves more between minutes than within a round. Prints each round and
the median ratios; the hot account's balance is checked exactly at the end.

    .venv/bin/python -m bench.ledger            # DATABASE_URL's server, else embedded pgserver
    .venv/bin/python -m bench.ledger --rounds 1 --transfers 100000 --skip-pgbench  # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import statistics
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
from clearport.db.database import Database, conn_of
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


HOT = AccountRef("platform", AccountKind.PROCESSOR_RECEIVABLE, "usd")


def _merchant(i: int) -> AccountRef:
    return AccountRef(f"mer_BENCH{i:021d}", AccountKind.PENDING, "usd")


async def _batched(
    url: str, tag: str, total: int, batch: int, posters: int, merchants: int
) -> tuple[float, int]:
    """Post `total` transfers in batches, all debiting the hot account: (seconds, amount)."""
    db = Database(url, min_size=posters, max_size=posters)
    await db.open()
    ledger = LedgerService(db, PgLedgerStore(), SystemClock())
    credits = [_merchant(i) for i in range(merchants)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for b in range(total // batch):
        queue.put_nowait(b)
    posted = 0

    async def poster() -> None:
        nonlocal posted
        while True:
            try:
                b = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            transfers = [
                TransferRequest(
                    id=f"bench:{tag}:{b}:{i}",
                    debit=HOT,
                    credit=credits[(b * batch + i) % merchants],
                    amount_minor=100 + i,
                    currency="usd",
                    code="capture",
                    source=f"bench_{tag}_{b}_{i}",
                )
                for i in range(batch)
            ]
            async with db.transaction() as tx:
                await ledger.post(tx, transfers)
            posted += sum(t.amount_minor for t in transfers)

    try:
        start = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(posters)))
        return time.perf_counter() - start, posted
    finally:
        await db.close()


async def _singles(url: str, tag: str, seconds: float, connections: int) -> tuple[int, int]:
    """One transfer per transaction for `seconds` from `connections` connections, each
    crediting its own merchant (the hot account is the only shared row): (count, amount)."""
    db = Database(url, min_size=connections, max_size=connections)
    await db.open()
    ledger = LedgerService(db, PgLedgerStore(), SystemClock())
    count = amount = 0
    deadline = time.perf_counter() + seconds

    async def client(c: int) -> None:
        nonlocal count, amount
        credit = _merchant(10_000 + c)
        n = 0
        while time.perf_counter() < deadline:
            async with db.transaction() as tx:
                await ledger.post(
                    tx,
                    [TransferRequest(f"one:{tag}:{c}:{n}", HOT, credit, 7, "usd", "capture")],
                )
            n += 1
            count += 1
            amount += 7

    try:
        await asyncio.gather(*(client(c) for c in range(connections)))
        return count, amount
    finally:
        await db.close()


async def _hot_balance(url: str) -> tuple[int, int]:
    """The hot account's balance (the sum of its shards) and how many rows it has."""
    db = Database(url, min_size=1, max_size=1)
    await db.open()
    try:
        ledger = LedgerService(db, PgLedgerStore(), SystemClock())
        async with db.transaction() as tx:
            acct = await ledger.account(tx, HOT)
            rows = await conn_of(tx).fetchval(
                "SELECT count(*) FROM ledger_accounts WHERE owner = 'platform' "
                "AND kind = 'processor_receivable' AND currency = 'usd'"
            )
        return (acct.balance if acct else 0), int(rows)
    finally:
        await db.close()


def _set_shards(base: str, database: str, shards: int | None) -> None:
    """`clearport.ledger_shards` for new connections to the bench database (None: default)."""
    with psycopg.connect(base, autocommit=True) as conn:
        if shards is None:
            conn.execute(
                sql.SQL("ALTER DATABASE {} RESET clearport.ledger_shards").format(
                    sql.Identifier(database)
                )
            )
        else:
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET clearport.ledger_shards = {}").format(
                    sql.Identifier(database), sql.Literal(str(shards))
                )
            )


def _pgbench_args(url: str) -> tuple[list[str], dict[str, str], str]:
    u = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    # pgserver's URI names a socket directory in `?host=`, not a host.
    host = u.host or str(u.query.get("host") or "127.0.0.1")
    conn = ["-h", host, "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    return conn, env, u.database or "postgres"


def _pgbench_init(binary: str, url: str, scale: int) -> None:
    conn, env, db = _pgbench_args(url)
    subprocess.run(
        [binary, *conn, "-i", "-q", "-s", str(scale), db], check=True, env=env, capture_output=True
    )


def _pgbench(binary: str, url: str, clients: int, threads: int, seconds: int) -> float:
    conn, env, db = _pgbench_args(url)
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
            db,
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


def _load() -> float:
    return os.getloadavg()[0]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.ledger",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--transfers", type=int, default=1_000_000, help="batched transfers, over all rounds"
    )
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--posters", type=int, default=4, help="concurrent connections posting")
    ap.add_argument("--merchants", type=int, default=100, help="credit-side accounts")
    ap.add_argument("--single-seconds", type=float, default=4.0, help="per round and setting")
    ap.add_argument("--single-connections", type=int, default=32)
    ap.add_argument("--skip-pgbench", action="store_true")
    ap.add_argument("--pgbench-seconds", type=int, default=6, help="per round")
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
        binary = None if args.skip_pgbench else _pgbench_binary(embedded_bin)
        pgbench_url = _with_database(base, pgbench_db)
        if binary is not None:
            _pgbench_init(binary, pgbench_url, args.pgbench_scale)
        per_round = args.transfers // args.rounds // args.batch * args.batch
        expected = 0
        rounds: list[dict[str, Any]] = []
        for r in range(args.rounds):
            row: dict[str, Any] = {"round": r + 1, "load_1m": round(_load(), 1)}
            seconds, amount = asyncio.run(
                _batched(url, f"r{r}", per_round, args.batch, args.posters, args.merchants)
            )
            expected += amount
            row["batched_transfers_per_s"] = round(per_round / seconds)
            for label, shards in (("sharded", None), ("one_row", 1)):
                _set_shards(base, ledger_db, shards)
                count, amount = asyncio.run(
                    _singles(url, f"r{r}{label}", args.single_seconds, args.single_connections)
                )
                expected += amount
                row[f"single_{label}_transfers_per_s"] = round(count / args.single_seconds)
            _set_shards(base, ledger_db, None)
            if binary is not None:
                tps = _pgbench(binary, pgbench_url, 8, 2, args.pgbench_seconds)
                row["pgbench_tpcb_tps"] = round(tps)
                row["ratio_batched"] = round(row["batched_transfers_per_s"] / tps, 1)
                row["ratio_single_sharded"] = round(row["single_sharded_transfers_per_s"] / tps, 2)
                row["ratio_single_one_row"] = round(row["single_one_row_transfers_per_s"] / tps, 2)
            row["load_1m_after"] = round(_load(), 1)
            print(json.dumps(row), flush=True)
            rounds.append(row)
        balance, hot_rows = asyncio.run(_hot_balance(url))
        if balance != expected:
            raise SystemExit(f"hot account balance {balance} != posted {expected}")

        def median(key: str) -> float:
            return statistics.median(r[key] for r in rounds)

        result: dict[str, Any] = {
            "server": settings,
            "rounds": args.rounds,
            "batched": {
                "transfers": per_round * args.rounds,
                "batch": args.batch,
                "posters": args.posters,
                "median_transfers_per_s": median("batched_transfers_per_s"),
            },
            "single": {
                "connections": args.single_connections,
                "seconds_per_round": args.single_seconds,
                "median_sharded_transfers_per_s": median("single_sharded_transfers_per_s"),
                "median_one_row_transfers_per_s": median("single_one_row_transfers_per_s"),
            },
            "hot_account": {"balance_exact": True, "rows": hot_rows},
        }
        if binary is not None:
            result["median_pgbench_tpcb_tps"] = median("pgbench_tpcb_tps")
            result["median_ratio_batched"] = median("ratio_batched")
            result["median_ratio_single_sharded"] = median("ratio_single_sharded")
            result["median_ratio_single_one_row"] = median("ratio_single_one_row")
            result["target_ratio_batched"] = 25
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
