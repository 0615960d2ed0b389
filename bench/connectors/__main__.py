"""Authorizations per second through each connector against its simulator, beside the in-process
simulator in the same run.

    .venv/bin/python -m bench.connectors          # DATABASE_URL's server, else embedded
    .venv/bin/python -m bench.connectors --seconds 5 --concurrency 16

Starts `clearport simulate http` and `clearport simulate iso8583`, each in its own process, on a
scratch database (their own records, dropped afterwards), then drives `authorize` through each
connector behind its guard (breaker, deadline: as payments call it) with `--concurrency`
callers for `--seconds`: the HTTP acquirer over its bounded httpx pool, ISO 8583 multiplexed on
its one TCP connection by STAN. The in-process simulator is the same run's baseline: what the
connector layer costs without a network or a processor's record. A second row for the HTTP host
drives it with a bare HTTP/1.1 keep-alive client over asyncio streams (no httpx): the host's own
capacity, so the difference to the connector's row is the client's cost. Every call must be
approved. Runs on uvloop, as `clearport serve` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import uvloop
from psycopg import sql
from sqlalchemy.engine import make_url

from clearport.connectors.domain import (
    BreakerPolicy,
    CircuitBreaker,
    ConnectorCard,
    ConnectorStatus,
)
from clearport.connectors.guard import GuardedConnector
from clearport.connectors.http_acquirer import HttpAcquirerType
from clearport.connectors.iso8583 import Iso8583Type
from clearport.connectors.ports import BuildContext, Connector
from clearport.connectors.simulator.connector import SimulatorConnector
from clearport.core.ids import new_id
from clearport.core.sensitive import SensitiveStr

CLI = str(Path(sys.executable).parent / "clearport")
CARD = ConnectorCard(SensitiveStr("4242424242424242"), 12, 2035, SensitiveStr("123"))


@contextmanager
def _database() -> Iterator[str]:
    server: Any = None
    base = os.environ.get("DATABASE_URL")
    if not base:
        import pgserver  # type: ignore[import-untyped]

        server = pgserver.get_server(Path(tempfile.mkdtemp()) / "pgdata", cleanup_mode="stop")
        base = server.get_uri("postgres")
    name = f"clearport_bench_connectors_{secrets.token_hex(4)}"
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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _simulator(kind: str, url: str, port: int) -> Iterator[None]:
    import socket

    process = subprocess.Popen(
        [CLI, "simulate", kind, "--port", str(port), "--database-url", url],
        env={**os.environ, "CLEARPORT_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the {kind} simulator did not start")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _guarded(connector: Connector) -> GuardedConnector:
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=1_000_000, cooldown_s=1))
    return GuardedConnector(connector, breaker, timeout_s=10)


async def _drive(connector: GuardedConnector, seconds: float, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    refused = 0
    stop_at = time.monotonic() + seconds

    async def caller() -> None:
        nonlocal refused
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            result = await connector.authorize(new_id("att"), 2599, "usd", CARD, capture=False)
            latencies.append(time.perf_counter() - started)
            if result.status is not ConnectorStatus.APPROVED:
                refused += 1

    # A short warm-up: connections opened, first statements prepared.
    for _ in range(concurrency):
        await connector.authorize(new_id("att"), 100, "usd", CARD, capture=False)
    began = time.monotonic()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return _figures(latencies, time.monotonic() - began, refused)


class _RawHttpAuthorizations:
    """The HTTP host driven without httpx: one keep-alive connection per caller, the request
    written by hand (the connector's transformer builds the body)."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._free: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def authorize(self, reference: str) -> bool:
        from clearport.connectors.http_acquirer.transform import authorization_body

        body = json.dumps(authorization_body(reference, 2599, "usd", CARD, capture=False)).encode()
        head = (
            "POST /v1/authorizations HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        reader, writer = (
            self._free.pop()
            if self._free
            else await asyncio.open_connection("127.0.0.1", self._port)
        )
        writer.write(head + body)
        await writer.drain()
        headers = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in headers.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        answer = json.loads(await reader.readexactly(length))
        self._free.append((reader, writer))
        return bool(answer.get("result") == "approved")

    async def close(self) -> None:
        for _, writer in self._free:
            writer.close()


async def _drive_raw(
    raw: _RawHttpAuthorizations, seconds: float, concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    refused = 0
    stop_at = time.monotonic() + seconds

    async def caller() -> None:
        nonlocal refused
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            if not await raw.authorize(new_id("att")):
                refused += 1
            latencies.append(time.perf_counter() - started)

    began = time.monotonic()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return _figures(latencies, time.monotonic() - began, refused)


def _figures(latencies: list[float], elapsed: float, refused: int) -> dict[str, Any]:
    latencies.sort()
    return {
        "authorizations": len(latencies),
        "per_s": round(len(latencies) / elapsed),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "not_approved": refused,
    }


async def _bench(
    http_port: int, iso_port: int, seconds: float, concurrency: int, http_pool: int | None
) -> None:
    context = BuildContext(station=1)
    # The connector's default pool unless told otherwise.
    http_settings = {} if http_pool is None else {"max_connections": http_pool}
    connectors = {
        "in-process simulator (baseline)": _guarded(SimulatorConnector()),
        "http_acquirer -> clearport simulate http": _guarded(
            HttpAcquirerType().build(
                "http",
                {"url": f"http://127.0.0.1:{http_port}", **http_settings},
                {},
                context,
            )
        ),
        "iso8583 -> clearport simulate iso8583": _guarded(
            Iso8583Type().build("iso", {"host": "127.0.0.1", "port": iso_port}, {}, context)
        ),
    }
    results: dict[str, dict[str, Any]] = {}
    for label, connector in connectors.items():
        results[label] = await _drive(connector, seconds, concurrency)
        await connector.close()
    raw = _RawHttpAuthorizations(http_port)
    results["(bare HTTP/1.1 client -> the same HTTP host)"] = await _drive_raw(
        raw, seconds, concurrency
    )
    await raw.close()
    baseline = results["in-process simulator (baseline)"]["per_s"]
    pool = http_settings.get("max_connections", "default")
    print(f"\n{concurrency} concurrent callers, {seconds:g} s each, HTTP pool {pool}, one run:\n")
    print(f"{'connector':47} {'auth/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs baseline':>12}")
    for label, figures in results.items():
        ratio = figures["per_s"] / baseline if baseline else 0.0
        print(
            f"{label:47} {figures['per_s']:>8} {figures['p50_ms']:>8} {figures['p99_ms']:>8} "
            f"{ratio:>11.3f}x"
        )
        if figures["not_approved"]:
            raise SystemExit(f"{label}: {figures['not_approved']} calls not approved")
    print(
        json.dumps(
            {"seconds": seconds, "concurrency": concurrency, "http_pool": pool, "results": results}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--http-pool", type=int, default=None, help="the HTTP acquirer's max_connections"
    )
    args = parser.parse_args()
    with _database() as url:
        http_port, iso_port = _free_port(), _free_port()
        with _simulator("http", url, http_port), _simulator("iso8583", url, iso_port):
            uvloop.run(_bench(http_port, iso_port, args.seconds, args.concurrency, args.http_pool))


if __name__ == "__main__":
    main()
