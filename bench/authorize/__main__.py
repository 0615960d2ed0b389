"""Authorization throughput against `clearport serve --workers 2` (simulator at zero latency),
measured with wrk (64 connections, unique Idempotency-Keys, inline cards), then sale and
capture-only runs, and pgbench TPC-B (8 clients, -M prepared, scale 50) on the same server in the
same run, with the ratio.

    .venv/bin/python -m bench.authorize                       # DATABASE_URL's server
    .venv/bin/python -m bench.authorize --duration 10 --skip-pgbench   # quick look

Needs `wrk` (apt-get install -y wrk) and `pgbench` matching the server's major version.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from clearport.db import migrate

HERE = Path(__file__).parent
CLI = str(Path(sys.executable).parent / "clearport")


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _create_db(base: str, name: str) -> str:
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _with_database(base, name)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _parse_wrk(out: str) -> dict[str, Any]:
    def ms(value: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s)", value)
        assert m, value
        factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return round(float(m.group(1)) * factor, 2)

    result: dict[str, Any] = {}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["requests_per_s"] = float(rps.group(1)) if rps else None
    total = re.search(r"(\d+) requests in", out)
    result["requests"] = int(total.group(1)) if total else None
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+(?:us|ms|s))", out)
        result[f"p{pct}_ms"] = ms(m.group(1)) if m else None
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["errors"] = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(g) for g in sock.groups()) if sock else 0
    )
    return result


def _wrk(url: str, script: str, duration: int, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            "64",
            "-d",
            f"{duration}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            script,
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return _parse_wrk(out)


def _pgbench(base: str, scale: int, duration: int) -> float:
    url = _create_db(base, "clearport_pgbench")
    u = make_url(url)
    env = {**os.environ, "PGPASSWORD": u.password or ""}
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    subprocess.run(
        ["pgbench", *args, "-i", "-q", "-s", str(scale), u.database or ""],
        env=env,
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [
            "pgbench",
            *args,
            "-c",
            "8",
            "-j",
            "2",
            "-M",
            "prepared",
            "-T",
            str(duration),
            u.database or "",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    m = re.search(r"tps = ([\d.]+) \((?:without initial connection time|excluding)", out)
    assert m, out
    return float(m.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--skip-pgbench", action="store_true")
    parser.add_argument("--scale", type=int, default=50)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL")
    if not base:
        sys.exit("set DATABASE_URL to a PostgreSQL server where databases may be created")
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    url = _create_db(base, "clearport_bench")
    migrate.upgrade(url)
    data_dir = Path(tempfile.mkdtemp(prefix="clearport-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CLEARPORT_DATA_DIR": str(data_dir),
        "CLEARPORT_SECRET_KEY": secrets.token_hex(32),
        "CLEARPORT_RATE_LIMIT_REQUESTS": "1000000000",
        "CLEARPORT_SIMULATOR_LATENCY_S": "0",
        "CLEARPORT_LOG_LEVEL": "WARNING",
    }
    created = json.loads(
        subprocess.run(
            [CLI, "merchants", "create", "--name", "Bench", "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    key = created["key"]["secret"]
    port = _free_port()
    server = subprocess.Popen(
        [CLI, "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    target = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {}
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{target}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        wenv = {**env, "CP_KEY": key, "CP_CAPTURE": "false"}
        _wrk(target, str(HERE / "authorize.lua"), 3, wenv)  # warm-up
        results["authorize"] = _wrk(target, str(HERE / "authorize.lua"), args.duration, wenv)
        results["sale"] = _wrk(
            target, str(HERE / "authorize.lua"), args.duration, {**wenv, "CP_CAPTURE": "true"}
        )
        ids_file = data_dir / "authorized.txt"
        with psycopg.connect(url) as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM payments WHERE status = 'authorized' ORDER BY id"
                ).fetchall()
            ]
        ids_file.write_text("\n".join(ids) + "\n")
        capture_s = max(2, args.duration // 2)
        started = time.monotonic()
        run = _wrk(
            target,
            str(HERE / "capture.lua"),
            capture_s,
            {**wenv, "CP_IDS": str(ids_file), "CP_THREADS": "2"},
        )
        elapsed = time.monotonic() - started
        with psycopg.connect(url) as conn:
            done = conn.execute(
                "SELECT count(*) FROM payments WHERE status = 'captured' AND id = ANY(%s)", (ids,)
            ).fetchone()
        run["available_authorizations"] = len(ids)
        run["captured"] = done[0] if done else 0
        run["real_captures_per_s"] = round(run["captured"] / elapsed, 1)
        results["capture_only"] = run
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    if not args.skip_pgbench:
        tps = _pgbench(base, args.scale, args.duration)
        results["pgbench_tpcb_tps"] = tps
        results["ratio_authorize_to_tpcb"] = round(results["authorize"]["requests_per_s"] / tps, 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
