"""`clearport worker`, `clearport janitor`, `clearport txlog seal|verify|export`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console

from clearport.cli.context import in_migrated_container
from clearport.config import load_settings
from clearport.logs import configure_logging
from clearport.txlog.domain import SealedRow, Verdict
from clearport.txlog.service import CHAINS
from clearport.wiring import Container
from clearport.worker.jobs import run_forever, run_once

txlog_app = typer.Typer(help="The hash-chained transaction and audit logs.", no_args_is_help=True)
console = Console(stderr=True)
T = TypeVar("T")


def _run(work: Callable[[Container], Awaitable[T]]) -> T:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return in_migrated_container(settings, work)


def worker(
    once: bool = typer.Option(False, "--once", help="Run one pass of every job and exit."),
) -> None:
    """Janitor (pending attempts, expiring authorizations, ledger holds), txlog sealer,
    idempotency purge, and the nightly settlement schedule with its partition jobs."""

    async def work(container: Container) -> None:
        if once:
            report = await run_once(container)
            print(json.dumps(report.__dict__))
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_forever(container, stop)

    _run(work)


def janitor(
    grace_s: int | None = typer.Option(
        None, "--grace", help="Resolve attempts pending longer than this (seconds)."
    ),
) -> None:
    """Resolve pending attempts and expire stale authorizations once, then exit."""

    async def work(container: Container) -> None:
        if grace_s is not None:
            container.payments.janitor_grace_s = grace_s
        resolved = 0
        while True:
            batch = await container.payments.resolve_pending(container.settings.worker_batch_size)
            resolved += batch
            if batch == 0:
                break
        expired = await container.payments.expire_authorizations(
            container.settings.worker_batch_size
        )
        print(json.dumps({"resolved": resolved, "expired": expired}))

    _run(work)


def _report(verdict: Verdict) -> bool:
    if verdict.ok:
        Console().print(
            f"{verdict.chain}: OK, {verdict.length} entries, {verdict.checkpoints} checkpoints"
        )
        return True
    Console().print(
        f"{verdict.chain}: TAMPERED, first bad sequence number {verdict.first_bad_seq}: "
        f"{verdict.reason}"
    )
    return False


@txlog_app.command("seal")
def txlog_seal() -> None:
    """Seal every unsealed row now and write checkpoints."""

    async def work(container: Container) -> None:
        for chain in CHAINS:
            total = 0
            while True:
                result = await container.chains.seal(chain, 10_000)
                total += result.sealed
                if result.sealed == 0:
                    break
            Console().print(f"{chain}: sealed {total}")

    _run(work)


@txlog_app.command("verify")
def txlog_verify(
    chain: str = typer.Option("all", help="txlog | audit | all"),
    file: Path | None = typer.Option(None, "--file", help="Verify an exported file instead."),
) -> None:
    """Check the chain against its hashes and the signed checkpoints; name the first bad seq."""
    chains = CHAINS if chain == "all" else (chain,)

    async def work(container: Container) -> bool:
        ok = True
        for name in chains:
            if file is not None:
                rows = _read_export(file, name)
                verdict = await container.chains.verify_rows(name, rows)
            else:
                verdict = await container.chains.verify(name)
            ok = _report(verdict) and ok
        return ok

    if not _run(work):
        raise typer.Exit(1)


@txlog_app.command("export")
def txlog_export(out: Path = typer.Option(..., "--out", help="JSON-lines file to write.")) -> None:
    """Export both chains (rows as sealed, with their hashes) for offline verification."""

    async def work(container: Container) -> None:
        with out.open("w") as handle:
            for name in CHAINS:
                for row in await container.chains.export(name):
                    handle.write(
                        json.dumps(
                            {
                                "chain": name,
                                "seq": row.seq,
                                "source_seq": row.source_seq,
                                "hash": row.stored_hash.hex(),
                                "row": row.row_text,
                            }
                        )
                        + "\n"
                    )

    _run(work)


def _read_export(path: Path, chain: str) -> list[SealedRow]:
    rows: list[SealedRow] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        if item["chain"] != chain:
            continue
        rows.append(
            SealedRow(
                int(item["seq"]), int(item["source_seq"]), bytes.fromhex(item["hash"]), item["row"]
            )
        )
    return rows


def _die_with_parent() -> None:
    """uvicorn re-raises SIGTERM after its shutdown, so the parent may die before its `finally`
    runs: on Linux the kernel then sends the worker SIGTERM too (PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@contextmanager
def worker_subprocess(database_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """`clearport run` runs the worker as its own process, as production would."""
    env = {**os.environ, "DATABASE_URL": database_url}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from clearport.cli.main import app; app()", "worker"],
        env=env,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - called before any thread starts
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(janitor)
    app.add_typer(txlog_app, name="txlog")
