"""Fuzz the API from its own OpenAPI document with schemathesis, against a live server.

    python -m tools.fuzz --seed 20261207 --max-examples 100 --min-cases 10000  (make fuzz-ci)
    python -m tools.fuzz --max-time 600                                      (make fuzz: a random
                                                                              seed, longer)

Starts `clearport serve` on a fresh database (a new database on DATABASE_URL's server, else an
embedded PostgreSQL in a temporary directory), creates an admin operator key and a merchant with
its key, then runs schemathesis twice: as the merchant over the operations merchant keys may call,
and as the operator over the operations operators may call (the access table,
http/access_rules.py), every check on and every phase (examples, coverage, fuzzing, stateful).
Per-operation allowances live in tools/fuzz_allowances.py (schemathesis.toml loads it), each
with its reason; the summary counts how often each applied. Exits non-zero on any failure, or
when fewer than --min-cases cases ran in total.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from tools.fuzz_allowances import ALLOWANCE_LOG_ENV

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONFIG = ROOT / "schemathesis.toml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _database(tmp: Path) -> Iterator[str]:
    """A fresh, empty database: on DATABASE_URL's server, else an embedded one."""
    server: Any = None
    base = os.environ.get("DATABASE_URL")
    if not base:
        import pgserver  # type: ignore[import-untyped]

        server = pgserver.get_server(tmp / "pgdata", cleanup_mode="stop")
        base = server.get_uri("postgres")
    name = f"clearport_fuzz_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if server is not None:
            server.cleanup()


def _clearport(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [str(BIN / "clearport"), *args], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@contextmanager
def _server(env: dict[str, str], port: int) -> Iterator[str]:
    data_dir = Path(env["CLEARPORT_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir / "server.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "clearport"), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {log.name}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _operation_ids(document: dict[str, Any], *, merchant: bool) -> list[str]:
    """The operations a merchant key (or an admin operator key) is let through."""
    from clearport.http.access_rules import ROUTE_ACCESS

    ids = []
    for path, item in document["paths"].items():
        for method, spec in item.items():
            access = ROUTE_ACCESS.get((method.upper(), path))
            if access is None:
                continue
            allowed = access.merchant_keys if merchant else bool(access.operator_permissions)
            if allowed:
                ids.append(str(spec["operationId"]))
    return sorted(ids)


def _schemathesis(
    url: str,
    key: str,
    operation_ids: list[str],
    *,
    seed: int,
    max_time_s: int | None,
    max_examples: int | None,
    report: Path,
    allowance_log: Path,
) -> dict[str, Any]:
    args = [
        str(BIN / "st"),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "-H",
        f"Authorization: Bearer {key}",
        "--seed",
        str(seed),
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    if max_time_s is not None:
        args += ["--max-time", str(max_time_s)]
    if max_examples is not None:
        args += ["--max-examples", str(max_examples)]
    for operation_id in operation_ids:
        args += ["--include-operation-id", operation_id]
    env = {**os.environ, ALLOWANCE_LOG_ENV: str(allowance_log)}
    done = subprocess.run(args, check=False, cwd=ROOT, env=env)
    summary: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    summary["exit_code"] = done.returncode
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument("--min-cases", type=int, default=10_000)
    parser.add_argument(
        "--max-time",
        type=int,
        default=None,
        help="seconds per key, fuzzing and stateful phases repeating until spent",
    )
    parser.add_argument(
        "--max-examples",
        type=int,
        default=None,
        help="cases per operation and phase: the same work whatever the machine's load",
    )
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    print(f"fuzz: seed {seed}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="clearport-fuzz-"))
    with _database(tmp) as url:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "CLEARPORT_DATA_DIR": str(tmp / "data"),
            "CLEARPORT_SECRET_KEY": secrets.token_hex(32),
            "CLEARPORT_LOG_LEVEL": "WARNING",
            # The fuzzer is one client sending many requests and many without a key: neither
            # the rate limit nor the failed-authentication lockout may stand in its way.
            "CLEARPORT_RATE_LIMIT_REQUESTS": "1000000000",
            "CLEARPORT_AUTH_MAX_FAILURES": "1000000000",
            # The fuzzer registers connectors with made-up hosts: payments stay on the
            # built-in simulator rather than trying them.
            "CLEARPORT_CONNECTORS_DEFAULT_ORDER": "simulator",
        }
        subprocess.run([str(BIN / "clearport"), "db", "upgrade"], env=env, check=True)
        operator = _clearport(env, "operators", "create", "--role", "admin", "--json")["secret"]
        merchant = _clearport(env, "merchants", "create", "--name", "Fuzz Shop", "--json")
        merchant_key = merchant["key"]["secret"]
        with _server(env, _free_port()) as server:
            document = httpx.get(server + "/openapi.json").json()
            runs = {
                "merchant": (merchant_key, _operation_ids(document, merchant=True)),
                "operator": (operator, _operation_ids(document, merchant=False)),
            }
            results = {
                name: _schemathesis(
                    server,
                    key,
                    ids,
                    seed=seed,
                    max_time_s=args.max_time,
                    max_examples=args.max_examples,
                    report=tmp / f"{name}.json",
                    allowance_log=tmp / f"{name}-allowances.log",
                )
                for name, (key, ids) in runs.items()
            }
    return _summary(seed, results, tmp, args.min_cases)


def _summary(seed: int, results: dict[str, dict[str, Any]], tmp: Path, min_cases: int) -> int:
    """Print what ran and what the allowances absorbed; 0 only for zero failures and enough
    cases."""
    total = 0
    failed = False
    for name, result in results.items():
        cases = result.get("test_cases", {})
        generated = int(cases.get("generated", 0))
        failures = int(cases.get("unique_failures", 0)) + int(cases.get("errored", 0))
        total += generated
        failed = failed or result.get("exit_code") != 0 or failures > 0
        print(
            f"fuzz: {name} key: {generated} cases, {failures} failures, "
            f"{len(result.get('errors', []))} errors, exit code {result.get('exit_code')}"
        )
        log = tmp / f"{name}-allowances.log"
        used = Counter(log.read_text().split()) if log.exists() else Counter()
        for allowance, count in sorted(used.items()):
            print(f"fuzz:   allowance {allowance}: {count} refusals")
    enough = total >= min_cases
    verdict = "PASS" if enough and not failed else "FAIL"
    print(f"fuzz: seed {seed}: {total} cases in total (at least {min_cases}): {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
