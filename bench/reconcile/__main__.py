"""Reconciliation of N internal items against an N-row processor file with 0.1 % planted
exceptions, beside COPY of the same file into an unindexed table on the same server in the
same run (issue 16: bar ≤ 2x the COPY time, peak RSS ≤ 1 GiB).

    .venv/bin/python -m bench.reconcile --items 1000000
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.reconcile --items 10000000

Uses DATABASE_URL's server (a fresh database is created and dropped) or an embedded PostgreSQL.
Items: captured payments of the `simulator` connector on one day, 1 % of them with a refund.
The file: one row per item in another order, with the planted exceptions (each kind about
equally often). Reports the seed time, the COPY baseline, `clearport reconcile` wall time, the
ratio, the run's counts against what was planted, and the peak RSS of the reconcile process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from clearport.db import migrate

CLI = str(Path(sys.executable).parent / "clearport")
HEADER = (
    "merchant_reference,type,amount_minor,currency,fee_minor,interchange_minor,"
    "scheme_fee_minor,processor_fee_minor,settlement_date,dispute_case_id"
)
# Planting: item n gets kind PLANT[n % 6000 // 1000... ] — one in every 1000 items, rotating.
PLANTED = (
    "missing_external",
    "amount_mismatch",
    "currency_mismatch",
    "fee_difference",
    "duplicate",
    "missing_internal",
)


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def seed(url: str, items: int, day: date) -> None:
    """Payments captured on `day` (and 1 % refunded), loaded set-based in the server."""
    start = datetime.combine(day, datetime.min.time(), UTC)
    refunds = items // 100
    captures = items - refunds
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")  # bench data: a crash means re-seed
        conn.execute(
            "INSERT INTO merchants (id, name, country, mcc, default_currency, pricing, "
            "payout_delay_days, reserve) VALUES ('mer_BENCH', 'Bench', 'US', '5999', 'usd', "
            """'{"model": "blended", "percent_bps": 290, "fixed_minor": {"usd": 30}}', 0, """
            """'{"percent_bps": 0, "hold_days": 0}')"""
        )
        conn.execute(
            """INSERT INTO reconciliation_fee_schedules VALUES ('simulator', 'usd', 20, 5, now())"""
        )
        conn.execute(
            f"""
INSERT INTO payments (id, merchant_id, amount, currency, status, capture_requested,
    amount_captured, card_brand, card_bin, card_last4, card_exp_month, card_exp_year,
    card_fingerprint, token_id, auth_attempt_id, connector, routing, created_at, updated_at,
    captured_at, network_reference)
SELECT 'pay_B' || lpad(n::text, 25, '0'), 'mer_BENCH', 100 + n %% 49900, 'usd', 'captured', true,
       100 + n %% 49900, 'visa', '424242', '4242', 12, 2030, 'fp', 'tok_bench',
       'att_B' || lpad(n::text, 25, '0'), 'simulator', '{{}}', t, t, t, lpad(n::text, 12, '0')
  FROM generate_series(1, {captures}) AS n,
       LATERAL (SELECT %s::timestamptz + (n * interval '86399 milliseconds' / {captures}) * 1000
                AS t) AS ts""",
            (start,),
        )
        conn.execute(
            f"""
INSERT INTO payment_attempts (id, payment_id, merchant_id, operation, refund_id, amount,
    currency, connector, status, created_at, completed_at)
SELECT 'att_R' || lpad(n::text, 25, '0'), 'pay_B' || lpad(n::text, 25, '0'), 'mer_BENCH',
       'refund', 'rfd_R' || lpad(n::text, 25, '0'), (100 + n %% 49900) / 2, 'usd', 'simulator',
       'succeeded', t, t
  FROM generate_series(1, {refunds}) AS n,
       LATERAL (SELECT %s::timestamptz + interval '1 hour' + n * interval '1 millisecond'
                AS t) ts""",
            (start,),
        )
        # The state autovacuum keeps the tables in: hint bits set, pages all-visible (a run on
        # freshly inserted rows would set them itself, writing the whole table back once).
        conn.execute("VACUUM (ANALYZE) payments")
        conn.execute("VACUUM (ANALYZE) payment_attempts")


def reuse(url: str, items: int) -> date:
    """A kept database's day, after deleting its reconciliation runs (and what they made)."""
    with psycopg.connect(url, autocommit=True) as conn:
        seeded = conn.execute("SELECT count(*) FROM payments").fetchone()
        if seeded is None or seeded[0] != items - items // 100:
            raise SystemExit(f"--reuse: that database was not seeded with --items {items}")
        conn.execute(
            "TRUNCATE reconciliation_rejected_lines, reconciliation_exceptions, "
            "reconciliation_runs CASCADE"
        )
        row = conn.execute("SELECT max(captured_at)::date FROM payments").fetchone()
    assert row is not None
    day: date = row[0]
    return day


def export_file(url: str, path: Path, items: int, day: date) -> dict[str, int]:
    """The processor's file: every item once (fees by the agreed 20 bps + 5), in an order of its
    own, with one item in 1,000 planted as an exception, the kinds in turn."""
    refunds = items // 100
    captures = items - refunds
    kind = "CASE WHEN n %% 1000 = 7 THEN (n / 1000) %% 6 ELSE -1 END"
    # Simpler, explicit columns: fee = interchange + scheme + processor, with the breakdown
    # interchange = fee - 5 - (processor part), scheme 2, processor the rest.
    query = f"""
COPY (
  SELECT ref, type, amount, cur, fee, fee - 5, 2, 3, day, NULL
    FROM (SELECT ref, type, amount, cur,
                 (amount * 20 + 5000) / 10000 + 5 + CASE WHEN k = 3 THEN 7 ELSE 0 END AS fee,
                 day, ord, copies
            FROM (SELECT CASE WHEN k = 5 THEN 'att_X' ELSE 'att_B' END
                           || lpad(n::text, 25, '0') AS ref, 'capture' AS type,
                         100 + n %% 49900 + CASE WHEN k = 1 THEN 1 ELSE 0 END AS amount,
                         CASE WHEN k = 2 THEN 'EUR' ELSE 'USD' END AS cur, k,
                         %s::text AS day, (n::bigint * 7919) %% {captures} AS ord,
                         CASE WHEN k = 0 THEN 0 WHEN k = 4 THEN 2 ELSE 1 END AS copies
                    FROM generate_series(1, {captures}) AS n,
                         LATERAL (SELECT {kind} AS k) AS planted
                  UNION ALL
                  SELECT 'att_R' || lpad(n::text, 25, '0'), 'refund', (100 + n %% 49900) / 2,
                         'USD', -1, %s::text, n, 1
                    FROM generate_series(1, {refunds}) AS n) AS rows) AS f,
         generate_series(1, copies) AS c
   ORDER BY ord
) TO STDOUT WITH (FORMAT csv)"""
    rows = 0
    with psycopg.connect(url) as conn, path.open("wb") as out:
        out.write((HEADER + "\n").encode())
        with conn.cursor().copy(query, (day.isoformat(), day.isoformat())) as copy:
            for block in copy:
                out.write(block)
                rows += bytes(block).count(b"\n")
    planted = {k: 0 for k in PLANTED}
    for n in range(7, captures + 1, 1000):
        planted[PLANTED[(n // 1000) % 6]] += 1
    # A missing_internal row stands for an item the file lacks too: that item is missing_external.
    planted["missing_external"] += planted["missing_internal"]
    return {"file_rows": rows, **planted}


def copy_baseline(url: str, path: Path) -> float:
    """COPY the file into an unindexed, typed table: the floor for reading it at all."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE bench_copy_baseline (reference text, type text, amount_minor bigint, "
            "currency text, fee_minor bigint, interchange_minor bigint, scheme_fee_minor bigint, "
            "processor_fee_minor bigint, settlement_date date, dispute_case_id text)"
        )
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor().copy(
                "COPY bench_copy_baseline FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy,
            path.open("rb") as f,
        ):
            for block in iter(lambda: f.read(1 << 20), b""):
                copy.write(block)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy_baseline")
        conn.commit()
    return elapsed


def reconcile(url: str, path: Path, data_dir: Path, work_mem: str | None) -> dict[str, Any]:
    env = dict(
        os.environ,
        DATABASE_URL=url,
        CLEARPORT_DATA_DIR=str(data_dir),
        CLEARPORT_LOG_LEVEL="WARNING",
    )
    if work_mem:
        env["CLEARPORT_RECONCILIATION_WORK_MEM"] = work_mem
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    proc = subprocess.run(
        [CLI, "reconcile", "--connector", "simulator", str(path), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        check=True,
    )
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "run": json.loads(proc.stdout),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the database (for EXPLAIN)")
    parser.add_argument(
        "--work-mem",
        help="CLEARPORT_RECONCILIATION_WORK_MEM for the run (default 256MB)",
    )
    parser.add_argument(
        "--reuse",
        metavar="DATABASE",
        help="a database kept by --keep with the same --items: its items are used again (its "
        "reconciliation runs are deleted first), the seeding skipped; it is kept",
    )
    args = parser.parse_args()
    if args.items < 1000:
        parser.error("--items must be at least 1000")

    tmp = Path(tempfile.mkdtemp(prefix="clearport-bench-reconcile-"))
    server: Any = None
    base = os.environ.get("DATABASE_URL")
    if not base:
        import pgserver  # type: ignore[import-untyped]

        server = pgserver.get_server(tmp / "pgdata", cleanup_mode="stop")
        base = server.get_uri("postgres")
    name = args.reuse or f"clearport_bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        if not args.reuse:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        version = conn.execute("SHOW server_version").fetchone()
    url = _with_database(base, name)
    try:
        migrate.upgrade(url)
        t0 = time.perf_counter()
        if args.reuse:
            day = reuse(url, args.items)
        else:
            day = (datetime.now(UTC) - timedelta(days=1)).date()
            seed(url, args.items, day)
        seed_s = time.perf_counter() - t0
        path = tmp / "settlement.csv"
        planted = export_file(url, path, args.items, day)
        copy_s = copy_baseline(url, path)
        load_before = os.getloadavg()[0]
        result = reconcile(url, path, tmp / "data", args.work_mem)
        load_after = os.getloadavg()[0]
        replay = reconcile(url, path, tmp / "data", args.work_mem)
        run = result["run"]
        report = {
            "server": version[0] if version else None,
            "items": args.items,
            "file_rows": planted["file_rows"],
            "file_mib": round(path.stat().st_size / 2**20),
            "seed_s": round(seed_s, 1),
            "copy_s": round(copy_s, 2),
            "reconcile_s": round(result["wall_s"], 2),
            "ratio_to_copy": round(result["wall_s"] / copy_s, 2),
            "reconcile_peak_rss_mib": round(result["peak_rss_kib"] / 1024),
            "work_mem": args.work_mem or "default",
            # Other work on the machine shares its cores: the 1-minute load before and after.
            "load_average": [round(load_before, 2), round(load_after, 2)],
            "steps_s": run["steps_s"],
            "replay_s": round(replay["wall_s"], 2),
            "replayed_same_run": replay["run"]["id"] == run["id"],
            "planted": {k: planted[k] for k in PLANTED},
            "found": {k: run[k] for k in (*PLANTED, "matched", "rejected")},
        }
        print(json.dumps(report, indent=1))
    finally:
        path = tmp / "settlement.csv"
        if path.exists():
            path.unlink()
        if not args.keep and not args.reuse:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        else:
            print(f"kept database {name}", file=sys.stderr)
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
