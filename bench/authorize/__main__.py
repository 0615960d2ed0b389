"""The hot path under load, in one run against one PostgreSQL (fsync and synchronous_commit on):
authorize, sale, capture-only, tokenize and GET /v1/payments/{id} against `clearport serve
--workers 2` (simulator at zero latency) with 10 routing rules and 5 risk rules (a velocity rule
among them) active and a distinct card per request; the stack's ceiling (bench/authorize/ceiling.py:
the same FastAPI/uvicorn/asyncpg setup doing one durable INSERT per request); pgbench TPC-B
(8 clients, -M prepared, scale 50); and the ratios. Each figure is printed as it is measured.

    .venv/bin/python -m bench.authorize                       # DATABASE_URL's server
    .venv/bin/python -m bench.authorize --duration 10 --skip-pgbench   # quick look
    .venv/bin/python -m bench.authorize --set CLEARPORT_GROUP_COMMIT_MAX_WAIT_MS=0  # one flag

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
from collections.abc import Callable
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


def _cli_json(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [CLI, *args, "--json"], env=env, check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout))


def _wait_healthy(target: str, path: str = "/healthz") -> None:
    for _ in range(300):
        try:
            if httpx.get(f"{target}{path}", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    sys.exit(f"{target} did not start")


def _stop(server: subprocess.Popen[bytes]) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)


def _configure_rules(target: str, operator_key: str) -> None:
    """10 routing rules and 5 risk rules (one of them a velocity rule per card), activated."""
    headers = {"Authorization": f"Bearer {operator_key}"}
    with httpx.Client(base_url=target, headers=headers, timeout=30) as client:
        names = []
        for i in range(3):
            r = client.post("/v1/connectors", json={"name": f"sim-{i}", "type": "simulator"})
            r.raise_for_status()
            names.append(f"sim-{i}")
        rules: list[dict[str, Any]] = []
        for i in range(9):  # rules that do not match the bench's cards, tried first
            when: dict[str, Any] = (
                {"brand": "amex"}
                if i == 0
                else {"bin_range": [f"5{i}0000", f"5{i}9999"]}
                if i < 5
                else {"currency": "eur", "amount_gte": 1000 * i, "amount_lt": 1000 * i + 500}
            )
            rules.append({"name": f"r{i}", "when": when, "then": {"connectors": names[1:]}})
        rules.append(
            {
                "name": "visa-usd",
                "when": {"brand": "visa", "currency": "usd"},
                "then": {"connectors": names},
            }
        )
        r = client.post(
            "/v1/routing_rule_sets", json={"rules": rules, "default": {"connectors": names}}
        )
        r.raise_for_status()
        client.post(f"/v1/routing_rule_sets/{r.json()['id']}/activate").raise_for_status()
        risk = [
            {
                "name": "bins",
                "mode": "enforce",
                "kind": "block_list",
                "field": "bin",
                "values": [f"51{j:04d}" for j in range(50)],
            },
            {
                "name": "countries",
                "mode": "enforce",
                "kind": "block_list",
                "field": "issuer_country",
                "values": ["KP", "IR"],
            },
            {
                "name": "big-usd",
                "mode": "enforce",
                "kind": "amount_limit",
                "currency": "usd",
                "max_amount": 5_000_000,
            },
            {
                "name": "big-eur",
                "mode": "dry_run",
                "kind": "amount_limit",
                "currency": "eur",
                "max_amount": 5_000_000,
            },
            {
                "name": "card-velocity",
                "mode": "enforce",
                "kind": "velocity",
                "per": "card_fingerprint",
                "window_s": 3600,
                "max_count": 5,
            },
        ]
        r = client.post("/v1/risk_rule_sets", json={"rules": risk})
        r.raise_for_status()
        client.post(f"/v1/risk_rule_sets/{r.json()['id']}/activate").raise_for_status()


def _ids(url: str, status: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT id FROM payments WHERE status = %s ORDER BY id", (status,)
            ).fetchall()
        ]


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of `pid` and its children (the API workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(c) for c in children.read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _transactions(url: str) -> int:
    """Transactions committed in the bench's database so far (each autocommit statement is one;
    read-only ones too): per request, a count of the commits and single reads it made."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def _measured(url: str, server_pid: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`run` (a wrk run) with the API's CPU per request and the database's transactions per
    request, figures that depend far less on what else runs on the machine than req/s."""
    cpu_before, tx_before = _cpu_s(server_pid), _transactions(url)
    figure = run()
    time.sleep(2)  # the server's sessions report their statistics at most once a second
    cpu, tx = _cpu_s(server_pid) - cpu_before, _transactions(url) - tx_before
    done = figure.get("requests") or 0
    if done:
        figure["api_cpu_ms_per_request"] = round(cpu * 1000 / done, 2)
        figure["db_transactions_per_request"] = round(tx / done, 2)
    return figure


def _report(results: dict[str, Any], name: str, figure: dict[str, Any]) -> None:
    results[name] = figure
    print(f"{name}: {json.dumps(figure)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--skip-pgbench", action="store_true")
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--scale", type=int, default=50)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the server (e.g. CLEARPORT_GROUP_COMMIT_MAX_WAIT_MS=0)",
    )
    parser.add_argument(
        "--only", default="", help="comma-separated runs (authorize,sale,capture,tokenize,get)"
    )
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    base = os.environ.get("DATABASE_URL")
    if not base:
        sys.exit("set DATABASE_URL to a PostgreSQL server where databases may be created")
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    print(f"load average at start: {os.getloadavg()}", flush=True)
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
    for item in args.set:
        name, _, value = item.partition("=")
        env[name] = value
    key = _cli_json(["merchants", "create", "--name", "Bench"], env)["key"]["secret"]
    operator = _cli_json(["operators", "create", "--role", "admin"], env)
    operator_key = operator.get("secret") or operator["key"]["secret"]
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
    wenv = {**env, "CP_KEY": key, "CP_CAPTURE": "false", "CP_BENCH_DIR": str(HERE)}
    script = str(HERE / "authorize.lua")

    def wanted(name: str) -> bool:
        return not only or name in only

    try:
        _wait_healthy(target)
        _configure_rules(target, operator_key)
        _wrk(target, script, 3, wenv)  # warm-up
        if wanted("authorize"):
            _report(
                results,
                "authorize",
                _measured(url, server.pid, lambda: _wrk(target, script, args.duration, wenv)),
            )
        if wanted("sale"):
            sale_env = {**wenv, "CP_CAPTURE": "true"}
            _report(
                results,
                "sale",
                _measured(url, server.pid, lambda: _wrk(target, script, args.duration, sale_env)),
            )
        ids = _ids(url, "authorized")
        ids_file = data_dir / "authorized.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        if wanted("capture") and ids:
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
                    "SELECT count(*) FROM payments WHERE status = 'captured' AND id = ANY(%s)",
                    (ids,),
                ).fetchone()
            run["available_authorizations"] = len(ids)
            run["captured"] = done[0] if done else 0
            run["real_captures_per_s"] = round(run["captured"] / elapsed, 1)
            _report(results, "capture_only", run)
        if wanted("tokenize"):
            tokenize = str(HERE / "tokenize.lua")
            _report(
                results,
                "tokenize",
                _measured(url, server.pid, lambda: _wrk(target, tokenize, args.duration, wenv)),
            )
        if wanted("get") and ids:
            get_env = {**wenv, "CP_IDS": str(ids_file)}
            get = str(HERE / "get.lua")
            _report(
                results,
                "get_payment",
                _measured(url, server.pid, lambda: _wrk(target, get, args.duration, get_env)),
            )
    finally:
        _stop(server)
    if not args.skip_ceiling:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_ceiling (id bigserial PRIMARY KEY, body bytea)")
        port = _free_port()
        ceiling = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.authorize.ceiling:app",
                "--workers",
                "2",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--port",
                str(port),
            ],
            env=env,
            cwd=str(HERE.parent.parent),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        target = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(target, "/docs")
            _wrk(target, str(HERE / "ceiling.lua"), 3, env)
            _report(
                results,
                "ceiling_one_insert",
                _wrk(target, str(HERE / "ceiling.lua"), args.duration, env),
            )
        finally:
            _stop(ceiling)
    if not args.skip_pgbench:
        tps = _pgbench(base, args.scale, args.duration)
        _report(results, "pgbench_tpcb", {"tps": tps})
        for name in ("authorize", "sale", "tokenize", "get_payment", "ceiling_one_insert"):
            if name in results:
                results[f"ratio_{name}_to_tpcb"] = round(results[name]["requests_per_s"] / tps, 3)
        if "capture_only" in results:
            results["ratio_real_captures_to_tpcb"] = round(
                results["capture_only"]["real_captures_per_s"] / tps, 3
            )
    if "authorize" in results and "ceiling_one_insert" in results:
        results["ratio_authorize_to_ceiling"] = round(
            results["authorize"]["requests_per_s"]
            / results["ceiling_one_insert"]["requests_per_s"],
            3,
        )
    results["load_average_at_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
