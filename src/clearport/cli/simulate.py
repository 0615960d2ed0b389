"""`clearport simulate http|iso8583`: the acquirer simulators, each a process of its own, and
the two `clearport run` starts beside the API.

Each keeps its own records in a schema of its own (`simulator_http`, `simulator_iso8583`) of
the database it is given (`--database-url`, else DATABASE_URL, else the embedded one).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import typer

from clearport.cli.context import console, database, start_service

simulate_app = typer.Typer(
    help="Acquirer simulators in their own processes (for tests and demos).",
    no_args_is_help=True,
)


class Malformed(StrEnum):
    BAD_LENGTH = "bad_length"
    BAD_BITMAP = "bad_bitmap"
    NO_DE39 = "no_de39"


def _run(
    kind: str,
    *,
    host: str,
    port: int,
    database_url: str | None,
    name: str,
    schema: str | None,
    api_key: str | None,
    latency_ms: int,
    error_rate: float,
    timeout_rate: float,
    silent: bool,
    malformed: Malformed | None,
    seed: int | None,
    settlement_file_dir: Path | None,
) -> None:
    from clearport.wiring import serve_simulator

    settings = start_service()

    def serve(url: str) -> None:
        serve_simulator(
            kind,
            host=host,
            port=port,
            database_url=url,
            name=name,
            schema=schema,
            api_key=api_key,
            latency_ms=latency_ms,
            error_rate=error_rate,
            timeout_rate=timeout_rate,
            silent=silent,
            malformed=None if malformed is None else str(malformed),
            seed=seed,
            settlement_file_dir=settlement_file_dir,
        )

    if database_url:
        serve(database_url)
        return
    with database(settings) as url:
        serve(url)


HOST = typer.Option("127.0.0.1", help="Interface to bind.")
DATABASE_URL = typer.Option(
    None, "--database-url", help="Where the simulator keeps its records (default: DATABASE_URL)."
)
SCHEMA = typer.Option(None, help="The schema of its records (default: one per kind).")
LATENCY = typer.Option(0, "--latency-ms", min=0, max=60_000, help="Added before every answer.")
ERROR_RATE = typer.Option(0.0, min=0.0, max=1.0, help="Share answered 96 without acting.")
TIMEOUT_RATE = typer.Option(
    0.0, min=0.0, max=1.0, help="Share acted on and never answered (the lost answer)."
)
SILENT = typer.Option(False, "--silent", help="Accept connections and never answer.")
SEED = typer.Option(None, help="Seed of the fault draws (the same seed, the same faults).")
SETTLEMENT_FILE_DIR = typer.Option(
    None,
    "--settlement-file-dir",
    help="Write the day's settlement file here (NAME-YYYY-MM-DD.csv, for clearport reconcile).",
)


@simulate_app.command("http")
def simulate_http(
    port: int = typer.Option(..., help="TCP port."),
    host: str = HOST,
    database_url: str | None = DATABASE_URL,
    name: str = typer.Option("http-sim", help="This simulator's name in its records."),
    schema: str | None = SCHEMA,
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="CLEARPORT_SIMULATOR_API_KEY", help="Require this bearer key."
    ),
    latency_ms: int = LATENCY,
    error_rate: float = ERROR_RATE,
    timeout_rate: float = TIMEOUT_RATE,
    silent: bool = SILENT,
    seed: int | None = SEED,
    settlement_file_dir: Path | None = SETTLEMENT_FILE_DIR,
) -> None:
    """The HTTP/JSON acquirer: authorizations, captures, voids, refunds, reversals and status
    inquiries by reference."""
    _run(
        "http",
        host=host,
        port=port,
        database_url=database_url,
        name=name,
        schema=schema,
        api_key=api_key,
        latency_ms=latency_ms,
        error_rate=error_rate,
        timeout_rate=timeout_rate,
        silent=silent,
        malformed=None,
        seed=seed,
        settlement_file_dir=settlement_file_dir,
    )


@simulate_app.command("iso8583")
def simulate_iso8583(
    port: int = typer.Option(..., help="TCP port."),
    host: str = HOST,
    database_url: str | None = DATABASE_URL,
    name: str = typer.Option("iso8583-sim", help="This simulator's name in its records."),
    schema: str | None = SCHEMA,
    latency_ms: int = LATENCY,
    error_rate: float = ERROR_RATE,
    timeout_rate: float = TIMEOUT_RATE,
    silent: bool = SILENT,
    malformed: Malformed | None = typer.Option(
        None, help="Answer authorizations, sales, completions and refunds malformed."
    ),
    seed: int | None = SEED,
    settlement_file_dir: Path | None = SETTLEMENT_FILE_DIR,
) -> None:
    """ISO 8583:1987 over TCP (2-byte length header): 0100, 0200, 0220, 0420, 0800."""
    _run(
        "iso8583",
        host=host,
        port=port,
        database_url=database_url,
        name=name,
        schema=schema,
        api_key=None,
        latency_ms=latency_ms,
        error_rate=error_rate,
        timeout_rate=timeout_rate,
        silent=silent,
        malformed=malformed,
        seed=seed,
        settlement_file_dir=settlement_file_dir,
    )


# --- the simulators `clearport run` starts ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    kind: str
    name: str
    port: int
    process: subprocess.Popen[bytes]


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_listening(host: str, port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    process.kill()
    console.print(f"[red]The {port} simulator did not start.[/red]")
    raise typer.Exit(1)


@contextmanager
def simulator_processes(
    database_url: str, api_key: str, ports: dict[str, int], host: str = "127.0.0.1"
) -> Iterator[list[RunningSimulator]]:
    """Both simulators on `ports` (by kind), as their own processes, stopped with the block
    (and with their parent: they get SIGTERM if it dies first). The HTTP one requires
    `api_key`."""
    from clearport.cli.worker import die_with_parent

    started: list[RunningSimulator] = []
    env = {**os.environ, "DATABASE_URL": database_url, "CLEARPORT_SIMULATOR_API_KEY": api_key}
    try:
        for kind, port in ports.items():
            name = f"demo-{kind}"
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                [
                    sys.executable,
                    "-c",
                    "from clearport.cli.main import app; app()",
                    "simulate",
                    kind,
                    "--host",
                    host,
                    "--port",
                    str(port),
                    "--name",
                    name,
                ],
                env=env,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - called before any thread starts
            )
            started.append(RunningSimulator(kind, name, port, process))
            _wait_listening(host, port, process)
        yield started
    finally:
        for simulator in started:
            simulator.process.terminate()
        for simulator in started:
            try:
                simulator.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                simulator.process.kill()


# --- the money path under faults ---------------------------------------------------------------


@simulate_app.command("money")
def simulate_money(
    seed: int = typer.Option(..., help="Fixes the workload, the clock and every fault."),
    steps: int = typer.Option(60, min=1, max=100_000, help="How many steps of the schedule."),
    shrink: bool = typer.Option(
        True, "--shrink/--no-shrink", help="On a violation, find the shortest failing prefix."
    ),
) -> None:
    """Drive the money path under injected faults (connector, process, database, client)
    against a real PostgreSQL and check its invariants. The last line says `N violations`;
    the exit status is 1 when N > 0."""
    import asyncio

    from clearport.cli.context import start_command
    from clearport.logs import configure_logging
    from clearport.simulation import (
        dispose_database,
        prepare_database,
        reproduce,
        run_seed,
    )
    from clearport.simulation import shrink as shortest

    settings = start_command()
    configure_logging("CRITICAL", "console")  # injected faults make errors by design

    async def main(url: str) -> int:
        database = await prepare_database(url)
        try:
            report = await run_seed(settings, url, database, seed, steps)
            for violation in report.violations:
                print(violation.line())
            faults = ", ".join(f"{k} {v}" for k, v in sorted(report.faults.items()))
            print(f"seed {seed}: {report.steps} steps; faults: {faults or 'none'}")
            if report.violations:
                failing = steps
                if shrink:
                    failing = await shortest(settings, url, database, seed, report.steps)
                print(f"reproduce: {reproduce(seed, failing)}")
            return len(report.violations)
        finally:
            await dispose_database(url, database)

    with database(settings) as url:
        found = asyncio.run(main(url))
    print(f"{found} violations")
    if found:
        raise typer.Exit(1)
