"""Settlement of N captures across M merchants, beside COPY of the same rows into an unindexed
table on the same server in the same run.

    .venv/bin/python -m bench.settlement --payments 1000000 --merchants 50000
    .venv/bin/python -m bench.settlement --payments 10000000 --merchants 50000 --partitions 16

(2 % refunds; `--disputes 0.001 --adjustments 0.0005` by default, a quarter of the disputes won,
so reversed: every kind of item is in the run.)

and, to load the same data into the platform's own database (DATABASE_URL or the embedded one)
for a look with `clearport settle`:

    .venv/bin/python -m bench.settlement seed --payments 100000 --merchants 1000 [--date D]

Uses DATABASE_URL's server (a fresh database is created and dropped) or an embedded PostgreSQL.
Reports wall time, items/s, the COPY baseline and the ratio, and the peak RSS of every Clearport
process (the `clearport settle` subprocess(es) and this process, which seeds).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from bench.settlement.seed import copy_baseline, export_captures_csv, seed
from clearport.db import migrate

CLI = str(Path(sys.executable).parent / "clearport")


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _settle(
    url: str,
    day: str,
    data_dir: Path,
    partitions: int,
    workers: int,
    settle_workers: int | None,
) -> dict[str, Any]:
    env = dict(
        os.environ,
        DATABASE_URL=url,
        CLEARPORT_DATA_DIR=str(data_dir),
        CLEARPORT_SETTLEMENT_PARTITIONS=str(partitions),
        CLEARPORT_LOG_LEVEL="WARNING",
    )
    if settle_workers is not None:  # else the setting's default: one per CPU
        env["CLEARPORT_SETTLEMENT_WORKERS"] = str(settle_workers)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure settling, not recompiling imports
    cmd = [CLI, "settle", "--date", day, "--json"]
    # CPU seconds of the settle processes alone (user + system, their own process: not the
    # server's): what the client-side work costs, which the machine's load moves far less
    # than the wall time.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE) for _ in range(workers)]
    outputs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - started
    rss = []
    for p in procs:
        if p.returncode != 0:
            raise SystemExit(f"clearport settle failed ({p.returncode})")
    # ru_maxrss of waited children: the largest child's peak (KiB on Linux).
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss.append(after.ru_maxrss)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    runs = [json.loads(o) for o in outputs if o.strip()]
    return {"wall_s": wall, "runs": runs, "children_peak_rss_kib": max(rss), "cpu_s": cpu}


def _explain(url: str, name: str, min_s: float) -> None:
    """auto_explain for every new session of the bench database (the settle processes')."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute("LOAD 'auto_explain'")
        except psycopg.Error as exc:
            raise SystemExit(f"--explain: this server has no auto_explain ({exc})") from exc
        for setting, value in (
            ("session_preload_libraries", "auto_explain"),
            ("auto_explain.log_min_duration", f"{int(min_s * 1000)}ms"),
            ("auto_explain.log_analyze", "on"),
            ("auto_explain.log_buffers", "on"),
            ("auto_explain.log_nested_statements", "on"),
        ):
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    sql.Identifier(name), sql.Identifier(*setting.split(".")), sql.Literal(value)
                )
            )


def _steps(url: str) -> dict[str, Any]:
    """Where the run's time went, from its own timestamps: start (the run row) to staged
    (`staged_at`, where the schema has it: decision 0914) and to the first partition done,
    each partition (done_at to done_at), finalize."""
    with psycopg.connect(url) as conn:
        has_staged_at = conn.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'settlement_runs' AND column_name = 'staged_at'"
        ).fetchone()
        run = conn.execute(
            "SELECT created_at, completed_at"
            + (", staged_at" if has_staged_at else ", NULL")
            + " FROM settlement_runs ORDER BY created_at LIMIT 1"
        ).fetchone()
        done = [
            r[0]
            for r in conn.execute(
                "SELECT done_at FROM settlement_partitions WHERE done_at IS NOT NULL "
                "ORDER BY done_at"
            ).fetchall()
        ]
    if run is None or not done or run[1] is None:
        return {}
    ticks = [run[0], *done, run[1]]
    gaps = [round((b - a).total_seconds(), 1) for a, b in pairwise(ticks)]
    steps: dict[str, Any] = {}
    if run[2] is not None:
        steps["stage"] = round((run[2] - run[0]).total_seconds(), 1)
        steps["all_partitions"] = round((done[-1] - run[2]).total_seconds(), 1)
    return steps | {
        "stage_and_first_partition": gaps[0],
        "partitions": gaps[1:-1],
        "finalize": gaps[-1],
    }


def _migrate_and_seed(url: str, args: argparse.Namespace, day: date) -> dict[str, int]:
    """The schema, then the seed the flags ask for on `day`: what a template holds or a run
    without one starts from."""
    migrate.upgrade(url)
    return seed(
        url,
        payments=args.payments,
        merchants=args.merchants,
        business_date=day,
        refund_ratio=args.refunds,
        dispute_ratio=args.disputes,
        adjustment_ratio=args.adjustments,
    )


def _from_template(base: str, name: str, args: argparse.Namespace) -> tuple[dict[str, int], date]:
    """Seed the template database once (its counts and date in its comment), then make the
    run's database a copy of it, migrated to the current head."""
    template = args.seed_template
    with psycopg.connect(base, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (template,),
        ).fetchone()
    if row is None or not row[0]:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(template)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
        turl = _with_database(base, template)
        day = (datetime.now(UTC) - timedelta(days=1)).date()
        counts = _migrate_and_seed(turl, args, day)
        with psycopg.connect(turl, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        note = json.dumps({"counts": counts, "day": day.isoformat(), "args": vars(args)})
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(template), sql.Literal(note)
                )
            )
        row = (note,)
    seeded = json.loads(row[0])
    for key in ("payments", "merchants", "refunds", "disputes", "adjustments"):
        if seeded["args"][key] != getattr(args, key):
            raise SystemExit(f"--seed-template {template} was seeded with other --{key}")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
        conn.execute(
            # FILE_COPY: copies the files; the default (WAL_LOG, 15+) writes gigabytes to the WAL.
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY = FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    migrate.upgrade(_with_database(base, name))
    return seeded["counts"], date.fromisoformat(seeded["day"])


def seed_main(argv: list[str]) -> None:
    """`seed`: COPY-load captured payments (+2% refunds) and their ledger transfers for a date
    into the configured database (the embedded one when DATABASE_URL is unset)."""
    from clearport.config import load_settings
    from clearport.wiring import database_url, is_migrated

    parser = argparse.ArgumentParser(prog="python -m bench.settlement seed")
    parser.add_argument("--payments", type=int, required=True, help="captured payments to load")
    parser.add_argument("--merchants", type=int, required=True, help="merchants to spread over")
    parser.add_argument("--date", default="yesterday", help="business date YYYY-MM-DD")
    args = parser.parse_args(argv)
    if args.payments < 1 or args.merchants < 1:
        parser.error("--payments and --merchants must be at least 1")
    today = datetime.now(UTC).date()
    day = today - timedelta(days=1) if args.date == "yesterday" else date.fromisoformat(args.date)
    with database_url(load_settings()) as url:
        if not is_migrated(url):
            raise SystemExit("The database is not migrated: run `clearport db upgrade`.")
        counts = seed(url, payments=args.payments, merchants=args.merchants, business_date=day)
    print(json.dumps({"business_date": day.isoformat(), **counts}))


def main() -> None:
    if sys.argv[1:2] == ["seed"]:
        seed_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="concurrent `clearport settle`")
    parser.add_argument(
        "--settle-workers",
        type=int,
        metavar="N",
        help="partitions and staging shares each `clearport settle` runs at once "
        "(CLEARPORT_SETTLEMENT_WORKERS; default: one per CPU)",
    )
    parser.add_argument(
        "--explain",
        type=float,
        metavar="SECONDS",
        help="log EXPLAIN (ANALYZE, BUFFERS) of every settlement statement slower than this to "
        "the server's log (auto_explain: needs a server that ships it, e.g. DATABASE_URL's; the "
        "embedded one does not)",
    )
    parser.add_argument("--refunds", type=float, default=0.02, help="refunds per capture")
    parser.add_argument("--disputes", type=float, default=0.001, help="disputes per capture")
    parser.add_argument("--adjustments", type=float, default=0.0005, help="adjustments per capture")
    parser.add_argument(
        "--seed-template",
        metavar="NAME",
        help="keep the seeded data in database NAME on the server (DATABASE_URL's: a server that "
        "outlives the run) and clone it on later runs with the same NAME instead of seeding "
        "again (10 M captures took 48 min to seed here under load); the COPY baseline is "
        "measured in every run",
    )
    parser.add_argument(
        "--server-dir",
        metavar="DIR",
        help="the embedded server's data directory, kept after the run (created if missing): "
        "with --seed-template, the seeded template outlives the run without DATABASE_URL",
    )
    parser.add_argument(
        "--tune",
        action="store_true",
        help="ALTER SYSTEM max_wal_size=8GB, checkpoint_timeout=30min (reloadable) first",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="clearport-bench-settlement-"))
    server: Any = None
    base = os.environ.get("DATABASE_URL")
    if args.seed_template and not (base or args.server_dir):
        parser.error(
            "--seed-template needs DATABASE_URL or --server-dir (the embedded server's data is "
            "otherwise thrown away)"
        )
    if not base:
        import pgserver  # type: ignore[import-untyped]

        pgdata = Path(args.server_dir).resolve() if args.server_dir else tmp / "pgdata"
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
        base = server.get_uri("postgres")
    name = f"clearport_bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_database(base, name)
    with psycopg.connect(base, autocommit=True) as conn:
        server_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    if args.tune:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET max_wal_size = '8GB'")
            conn.execute("ALTER SYSTEM SET checkpoint_timeout = '30min'")
            conn.execute("SELECT pg_reload_conf()")
    try:
        day = (datetime.now(UTC) - timedelta(days=1)).date()
        t0 = time.perf_counter()
        if args.seed_template:
            counts, day = _from_template(base, name, args)
        else:
            counts = _migrate_and_seed(url, args, day)
        seed_s = time.perf_counter() - t0
        csv_path = str(tmp / "captures.csv")
        rows = export_captures_csv(url, csv_path)
        t0 = time.perf_counter()
        copy_baseline(url, csv_path)
        copy_s = time.perf_counter() - t0
        os.unlink(csv_path)
        if args.explain is not None:
            _explain(url, name, args.explain)
        load_before = os.getloadavg()[0]
        result = _settle(
            url, day.isoformat(), tmp / "data", args.partitions, args.workers, args.settle_workers
        )
        load_after = os.getloadavg()[0]
        items = sum(r["stats"]["staged"] for r in result["runs"][:1])
        report = {
            "server": server_version,
            "payments": args.payments,
            "refunds": counts["refunds"],
            "disputes": counts["disputes"],
            "adjustments": counts["adjustments"],
            "items": items,
            "merchants": args.merchants,
            "partitions": args.partitions,
            "workers": args.workers,
            "settle_workers": args.settle_workers,
            "tuned": args.tune,
            "seed_s": round(seed_s, 1),
            "copy_rows": rows,
            "copy_s": round(copy_s, 2),
            "settle_s": round(result["wall_s"], 1),
            "items_per_s": round(items / result["wall_s"]),
            "ratio_to_copy": round(result["wall_s"] / copy_s, 2),
            "settle_cpu_s": round(result["cpu_s"], 1),
            "load_1m_before_after": [round(load_before, 1), round(load_after, 1)],
            "settle_peak_rss_mib": round(result["children_peak_rss_kib"] / 1024),
            "bench_process_peak_rss_mib": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            ),
            "run_status": [r["status"] for r in result["runs"]],
            "steps_s": _steps(url),
        }
        print(json.dumps(report, indent=1))
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if server is not None:
            server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)  # the embedded server's data, the reports


if __name__ == "__main__":
    main()
