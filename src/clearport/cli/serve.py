"""`clearport serve` and `clearport run` (all in one: embedded database, demo keys, worker)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from clearport.access.domain import SYSTEM_CLI, Role
from clearport.cli.context import (
    CLI_ORIGIN,
    database,
    require_migrated,
    start_service,
    with_container,
)
from clearport.cli.worker import worker_subprocess
from clearport.merchants.service import NewMerchant

if TYPE_CHECKING:
    from clearport.config import Settings
    from clearport.wiring import Container


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _serve(settings: Settings, url: str, host: str, port: int, workers: int) -> None:
    import uvicorn

    os.environ["DATABASE_URL"] = url
    if workers > 1:
        # prometheus_client's multiprocess mode: every worker writes to this directory and
        # /metrics merges them. It must be set before any worker imports prometheus_client.
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
    # uvicorn re-raises the signal that stopped it once it has shut down. SIGTERM's default
    # action would end the process on the spot, skipping our `finally` blocks (the worker
    # subprocess, the embedded PostgreSQL); as an exception they unwind normally.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    uvicorn.run(
        "clearport.http.asgi:create",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
    )


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, min=1, max=64, help="API processes."),
) -> None:
    """Serve the API (refuses an un-migrated database)."""
    settings = start_service()
    with database(settings) as url:
        require_migrated(url)
        _serve(settings, url, host, port, workers)


async def _demo(container: Container) -> dict[str, Any]:
    operator = await container.merchants.create_operator_key(SYSTEM_CLI, CLI_ORIGIN, Role.ADMIN)
    merchant = await container.merchants.create(
        SYSTEM_CLI,
        CLI_ORIGIN,
        # Paid out the day it settles, so the walkthrough shows a payout file.
        NewMerchant(
            name="Demo Coffee",
            country="US",
            mcc="5814",
            default_currency="usd",
            payout_delay_days=0,
        ),
    )
    key = await container.merchants.create_key(SYSTEM_CLI, CLI_ORIGIN, merchant.id, None)
    return {
        "operator_key": operator.secret,
        "merchant": merchant.id,
        "merchant_key": key.secret,
    }


def run(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
) -> None:
    """All in one: embedded database, migrate, demo keys, serve."""
    from clearport.wiring import upgrade_database

    settings = start_service()
    with database(settings) as url:
        upgrade_database(url)
        created = with_container(settings, url, _demo)
        base = f"http://{host}:{port}"
        out = Console()
        out.print("[bold]Clearport is starting.[/bold] These keys are shown once:")
        out.print(f"  API            {base}  (docs: {base}/docs)")
        out.print(f"  operator key   {created['operator_key']}  (role: admin)")
        out.print(f"  merchant       {created['merchant']}")
        out.print(f"  merchant key   {created['merchant_key']}")
        out.print("For the README walkthrough, in another terminal:")
        out.print(
            f"  export OK={created['operator_key']} SK={created['merchant_key']} "
            f"MER={created['merchant']}",
            soft_wrap=True,
        )
        sys.stdout.flush()
        with worker_subprocess(url):  # payments (issue 5): janitor, sealer, purges
            _serve(settings, url, host, port, 1)
