"""Vault throughput: tokenizations/s through the HTTP API and envelope operations/s in process.

    .venv/bin/python -m bench.vault_bench                     # both parts
    .venv/bin/python -m bench.vault_bench --skip-http         # in-process only
    .venv/bin/python -m bench.vault_bench --duration 10 --workers 2 --connections 32

In process (local key provider): AES-256-GCM encrypt+decrypt of one card record with its AAD,
encrypt alone, DEK unwraps (a cache miss: what the TTL cache saves) and fingerprint HMACs.
HTTP: `clearport serve --workers N` on a fresh database (DATABASE_URL's server, else an embedded
PostgreSQL in a temporary directory), driven by wrk posting `POST /v1/tokens`; every request
inserts one token row and commits.
"""

from __future__ import annotations

import argparse
import asyncio
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from clearport.db import migrate
from clearport.vault.domain import RecordKind, aad_for, dek_context, fingerprint
from clearport.vault.envelope import AesGcmCipher
from clearport.vault.keyring import LocalKeyProvider

CLI = str(Path(sys.executable).parent / "clearport")

LUA = """
local body = '{"card":{"number":"4242424242424242","exp_month":12,"exp_year":2030}}'
local headers = {["Authorization"] = "Bearer " .. os.getenv("CP_KEY"),
                 ["Content-Type"] = "application/json"}
request = function()
  return wrk.format("POST", "/v1/tokens", headers, body)
end
"""

# Baseline in the same run: the same authentication and rate limiting, one read, no write.
LUA_GET = """
local headers = {["Authorization"] = "Bearer " .. os.getenv("CP_KEY")}
local path = "/v1/tokens/" .. os.getenv("CP_TOKEN")
request = function()
  return wrk.format("GET", path, headers)
end
"""


def _rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of `fn` over about `seconds` (checked every 1,000 calls)."""
    done = 0
    started = time.perf_counter()
    while True:
        for _ in range(1_000):
            fn()
        done += 1_000
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return round(done / elapsed)


def in_process(seconds: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="clearport-vault-bench-"))
    provider = LocalKeyProvider(tmp / "keyring.json")
    cipher = AesGcmCipher()
    dek, wrapped, kek = asyncio.run(provider.generate_data_key(dek_context("mer_bench", 1)))
    fp_key = asyncio.run(provider.fingerprint_key())
    payload = b'{"number":"4242424242424242","holder_name":"Ann Smith"}'
    aad = aad_for("mer_bench", RecordKind.CARD, "tok_01BENCH", 1)

    def round_trip() -> None:
        nonce, ciphertext = cipher.encrypt(dek, payload, aad)
        cipher.decrypt(dek, nonce, ciphertext, aad)

    loop = asyncio.new_event_loop()

    def unwrap_in_loop() -> None:
        loop.run_until_complete(provider.unwrap(wrapped, kek, dek_context("mer_bench", 1)))

    result = {
        "encrypt_decrypt_per_s": _rate(round_trip, seconds),
        "encrypt_per_s": _rate(lambda: cipher.encrypt(dek, payload, aad), seconds),
        "fingerprint_per_s": _rate(
            lambda: fingerprint(fp_key, "mer_bench", "4242424242424242"), seconds
        ),
        "dek_unwrap_local_per_s": _rate(unwrap_in_loop, seconds),
    }
    loop.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return result


# --- HTTP --------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _database(tmp: Path) -> Iterator[str]:
    base = os.environ.get("DATABASE_URL")
    server: Any = None
    if not base:
        import pgserver

        server = pgserver.get_server(tmp / "pgdata", cleanup_mode="stop")
        base = server.get_uri("postgres")
    name = "clearport_vault_bench"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if server is not None:
            server.cleanup()


def _wrk(url: str, script: Path, duration: int, connections: int, env: dict[str, str]) -> Any:
    out = subprocess.run(
        [
            *("wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--latency"),
            *("--timeout", "10s", "-s", str(script), url),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"\s50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"\s99%\s+([\d.]+\w+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "tokenizations_per_s": float(rps.group(1)) if rps else None,
        "p50": p50.group(1) if p50 else None,
        "p99": p99.group(1) if p99 else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def over_http(duration: int, workers: int, connections: int) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk (or pass --skip-http)")
    tmp = Path(tempfile.mkdtemp(prefix="clearport-vault-bench-"))
    script = tmp / "tokens.lua"
    script.write_text(LUA)
    get_script = tmp / "get_token.lua"
    get_script.write_text(LUA_GET)
    with _database(tmp) as url:
        migrate.upgrade(url)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "CLEARPORT_DATA_DIR": str(tmp / "data"),
            "CLEARPORT_SECRET_KEY": secrets.token_hex(32),
            "CLEARPORT_RATE_LIMIT_REQUESTS": "1000000000",
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
        port = _free_port()
        server = subprocess.Popen(
            [CLI, "serve", "--workers", str(workers), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        target = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{target}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            wenv = {**env, "CP_KEY": created["key"]["secret"]}
            _wrk(target, script, 2, connections, wenv)  # warm-up: DEK created and cached
            result = _wrk(target, script, duration, connections, wenv)
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT count(*), max(id) FROM card_tokens").fetchone()
            assert row is not None
            result["tokens_stored"] = row[0]
            baseline = _wrk(target, get_script, duration, connections, {**wenv, "CP_TOKEN": row[1]})
            result["baseline_get_token_per_s"] = baseline["tokenizations_per_s"]
            result["baseline_get_token_p50"] = baseline["p50"]
            result["workers"] = workers
            result["connections"] = connections
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)
    return dict(result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=15, help="HTTP seconds")
    parser.add_argument("--seconds", type=float, default=2.0, help="per in-process figure")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"in_process": in_process(args.seconds)}
    if not args.skip_http:
        results["http"] = over_http(args.duration, args.workers, args.connections)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
