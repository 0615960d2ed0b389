"""`clearport serve` and `clearport run` (all in one: embedded database, demo keys, worker)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from clearport.cli.context import (
    console,
    database,
    require_migrated,
    start_service,
    with_container,
)
from clearport.cli.worker import worker_subprocess

if TYPE_CHECKING:
    from clearport.config import Settings


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _serve(
    settings: Settings,
    url: str,
    host: str,
    port: int,
    workers: int,
    *,
    sock: socket.socket | None = None,
) -> None:
    """uvicorn on `host:port`, or on `sock` already bound there (one process)."""
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
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "loop": "uvloop",
        "http": "httptools",
        "log_config": None,
        "access_log": False,
    }
    if sock is None:
        uvicorn.run("clearport.cli.asgi:create", **options)
        return
    server = uvicorn.Server(uvicorn.Config("clearport.cli.asgi:create", **options))
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE, as uvicorn.run exits


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


def _bind_or_exit(host: str, port: int) -> socket.socket:
    """The listening address, taken before anything else happens: a port in use is a one-line
    error before the database, the demo keys or the worker are touched. The socket is handed to
    uvicorn, so nothing can take the port in between."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        console.print(f"[red]Cannot listen on {host}:{port}: {exc}.[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        console.print(
            f"[red]Cannot listen on {host}:{port}: {exc.strerror}. Stop what uses it or pick "
            f"another port: make run PORT={port + 1} (clearport run --port {port + 1}).[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    return sock


def run(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port (make run PORT=…)."),
) -> None:
    """All in one: embedded database, migrate, the demo merchant and keys (created once, kept in
    the data directory and shown again), both connector simulators (registered as connectors),
    worker, serve."""
    from clearport.cli.demo import demo_file, ensure_demo, ensure_demo_connectors, simulator_plan
    from clearport.cli.simulate import simulator_processes
    from clearport.wiring import upgrade_database

    sock = _bind_or_exit(host, port)
    settings = start_service()
    with database(settings) as url:
        upgrade_database(url)
        path = demo_file(settings.data_dir)
        demo, reused = with_container(settings, url, lambda c: ensure_demo(c, path))
        plan = simulator_plan(settings.data_dir)
        with simulator_processes(url, plan.api_key, plan.ports) as simulators:
            names = with_container(
                settings, url, lambda c: ensure_demo_connectors(c, simulators, plan.api_key)
            )
            base = f"http://{host}:{port}"
            out = Console()
            kept = "the same as before" if reused else "new"
            out.print(f"[bold]Clearport is starting.[/bold] Demo keys ({kept}; kept in {path}):")
            out.print(f"  API            {base}  (docs: {base}/docs)")
            out.print(f"  operator key   {demo.operator_key}  (role: admin)")
            out.print(
                f"  console        {base}/console  (sign in with the operator key; the first "
                "sign-in enrols an authenticator app: QR code and secret shown once)"
            )
            out.print(f"  merchant       {demo.merchant}")
            out.print(f"  merchant key   {demo.merchant_key}")
            for simulator in simulators:
                out.print(
                    f"  connector      {simulator.name} ({simulator.kind} simulator on port "
                    f"{simulator.port}, its own process)"
                )
            out.print(f"  payments try   {', '.join(names)} (in this order: failover)")
            out.print("For the README walkthrough, in another terminal:")
            out.print(
                f"  export OK={demo.operator_key} SK={demo.merchant_key} MER={demo.merchant}",
                soft_wrap=True,
            )
            sys.stdout.flush()
            with worker_subprocess(url):  # payments (issue 5): janitor, sealer, purges
                _serve(settings, url, host, port, 1, sock=sock)
