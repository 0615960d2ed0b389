"""`clearport worker`, `clearport janitor`, and the worker process `clearport run` starts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from clearport.cli.context import in_migrated_container, start_command, start_service

if TYPE_CHECKING:
    from clearport.wiring import Container


def worker(
    once: bool = typer.Option(False, "--once", help="Run one pass of every job and exit."),
) -> None:
    """Janitor (pending attempts, expiring authorizations, ledger holds), txlog sealer and
    checkpoints, idempotency purge, the nightly settlement schedule with its partition jobs,
    webhooks (relay, delivery jobs, retention), and the copies out of PostgreSQL (checkpoints to
    object storage, the DynamoDB mirror)."""
    from clearport.worker.jobs import copy_once, run_forever, run_once

    async def work(container: Container) -> None:
        if once:
            report = await run_once(container)
            copied = await copy_once(container, f"once:{os.getpid()}")
            print(json.dumps(report.__dict__ | {"copied": copied}))
            return
        metrics_port = container.settings.worker_metrics_port
        if metrics_port is not None:  # the worker's own metrics (webhook deliveries, backlog)
            from prometheus_client import start_http_server

            start_http_server(metrics_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_forever(container, stop)

    in_migrated_container(start_service(), work, listen=not once)


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

    in_migrated_container(start_command(), work)


def die_with_parent() -> None:
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
        preexec_fn=die_with_parent,  # noqa: PLW1509 - called before any thread starts
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
