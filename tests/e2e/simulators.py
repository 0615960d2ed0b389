"""`clearport simulate http|iso8583` in their own processes for the end-to-end tests, and their
own records read back (a schema per simulator, so each test compares only its own)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.connectors.service import NewConnector
from clearport.wiring import Container
from tests.support import free_port

CLI = str(Path(sys.executable).parent / "clearport")
START_TIMEOUT_S = 30


@dataclass
class Simulator:
    kind: str  # "http" | "iso8583"
    name: str
    port: int
    schema: str
    database_url: str
    log: Path
    options: tuple[str, ...]
    process: subprocess.Popen[bytes] | None = None
    _logs: list[Any] = field(default_factory=list)

    def start(self) -> None:
        handle = self.log.open("ab")
        self._logs.append(handle)
        self.process = subprocess.Popen(
            [
                CLI,
                "simulate",
                self.kind,
                "--port",
                str(self.port),
                "--database-url",
                self.database_url,
                "--name",
                self.name,
                "--schema",
                self.schema,
                *self.options,
            ],
            env={**os.environ, "CLEARPORT_LOG_LEVEL": "INFO"},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the {self.kind} simulator died: {self.log.read_text()}")
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the {self.kind} simulator did not start")

    def kill(self) -> None:
        """SIGKILL: mid-request, as a crash would."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for handle in self._logs:
            handle.close()

    def records(self) -> dict[str, dict[str, Any]]:
        """What the simulator did, by reference (our attempt ids)."""
        with psycopg.connect(self.database_url, row_factory=dict_row) as conn:
            rows = conn.execute(
                sql.SQL("SELECT * FROM {}.transactions").format(sql.Identifier(self.schema))
            ).fetchall()
        return {row["reference"]: row for row in rows}

    def settings(self, **extra: object) -> tuple[str, dict[str, object]]:
        """The connector type and settings that reach this simulator."""
        if self.kind == "http":
            return "http_acquirer", {"url": f"http://127.0.0.1:{self.port}", **extra}
        return "iso8583", {"host": "127.0.0.1", "port": self.port, **extra}


@contextmanager
def simulator(
    kind: str, database_url: str, log_dir: Path, *options: str, name: str | None = None
) -> Iterator[Simulator]:
    schema = f"sim_{kind}_{secrets.token_hex(4)}"
    running = Simulator(
        kind,
        name or f"{kind}-sim",
        free_port(),
        schema,
        database_url,
        log_dir / f"{schema}.log",
        options,
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


async def register(
    container: Container, name: str, simulator: Simulator, **settings: object
) -> None:
    kind, shown = simulator.settings(**settings)
    await container.connectors.create(SYSTEM_CLI, Origin("test"), NewConnector(name, kind, shown))


STANDING = frozenset({"approved", "captured"})


def standing_authorizations(*simulators: Simulator) -> dict[str, str]:
    """Authorizations and sales that stand at the processors (not reversed, voided or refused):
    reference -> simulator name."""
    standing: dict[str, str] = {}
    for sim in simulators:
        for reference, row in sim.records().items():
            if row["kind"] in ("authorize", "sale") and row["state"] in STANDING:
                assert reference not in standing, f"{reference} stands at two processors"
                standing[reference] = sim.name
    return standing
