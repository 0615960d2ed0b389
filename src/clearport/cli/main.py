"""`clearport`: serve, run, db, operators, merchants."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from typing import Any

import typer
import uvicorn
from rich.console import Console

from clearport.access.domain import SYSTEM_CLI, Role
from clearport.cli.context import CLI_ORIGIN, console, database, require_migrated, with_container
from clearport.config import Settings, load_settings
from clearport.core.errors import ClearportError
from clearport.http.schemas import key_json, merchant_json
from clearport.logs import configure_logging
from clearport.merchants.service import NewMerchant
from clearport.wiring import Container, schema_head, upgrade_database

app = typer.Typer(help="Clearport: merchant services platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
operators_app = typer.Typer(help="Operator keys.", no_args_is_help=True)
merchants_app = typer.Typer(help="Merchants.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(operators_app, name="operators")
app.add_typer(merchants_app, name="merchants")
# --- vault (issue 3): register commands here ---
from clearport.cli.keys import keys_app, shred  # noqa: E402

app.add_typer(keys_app, name="keys")
merchants_app.command("shred")(shred)
# --- ledger (issue 4): register commands here ---
# --- payments (issue 5): register commands here ---
from clearport.cli.payments import register as register_payments  # noqa: E402
from clearport.cli.payments import worker_subprocess  # noqa: E402

register_payments(app)
# --- settlement (issue 6): register commands here ---
from clearport.cli.settle import register as register_settlement  # noqa: E402

register_settlement(app)

# The shared start-up of database commands (cli/context.py), under the names the other CLI
# modules use.
_database = database
_with_container = with_container
_require_migrated = require_migrated


def _fail(exc: ClearportError) -> None:
    console.print(f"[red]{exc.message}[/red]")
    raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    settings = load_settings()
    configure_logging(settings.log_level, "console")
    with _database(settings) as url:
        upgrade_database(url)
        console.print(f"Database at schema {schema_head()}.")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _serve(settings: Settings, url: str, host: str, port: int, workers: int) -> None:
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


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, min=1, max=64, help="API processes."),
) -> None:
    """Serve the API (refuses an un-migrated database)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    with _database(settings) as url:
        _require_migrated(url)
        _serve(settings, url, host, port, workers)


@app.command()
def run(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
) -> None:
    """All in one: embedded database, migrate, demo keys, serve."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    with _database(settings) as url:
        upgrade_database(url)

        async def demo(container: Container) -> dict[str, Any]:
            operator = await container.merchants.create_operator_key(
                SYSTEM_CLI, CLI_ORIGIN, Role.ADMIN
            )
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

        created = _with_container(settings, url, demo)
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


@operators_app.command("create")
def operators_create(
    role: Role = typer.Option(..., "--role", help="admin | support | finance | security"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create an operator key and print it once."""
    settings = load_settings()
    configure_logging(settings.log_level, "console")
    with _database(settings) as url:
        _require_migrated(url)
        issued = _with_container(
            settings,
            url,
            lambda c: c.merchants.create_operator_key(SYSTEM_CLI, CLI_ORIGIN, role),
        )
    if as_json:
        print(json.dumps(key_json(issued.key, issued.secret)))
    else:
        Console().print(f"Operator key ({role}), shown once: {issued.secret}")


@merchants_app.command("create")
def merchants_create(
    name: str = typer.Option(...),
    country: str = typer.Option("US", help="ISO 3166-1 alpha-2."),
    mcc: str = typer.Option("5999", help="Merchant category code."),
    currency: str = typer.Option("usd", help="Default currency."),
    with_key: bool = typer.Option(True, "--with-key/--no-key", help="Also issue a secret key."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Onboard a merchant (and issue its first secret key)."""
    settings = load_settings()
    configure_logging(settings.log_level, "console")

    async def create(container: Container) -> dict[str, Any]:
        merchant = await container.merchants.create(
            SYSTEM_CLI,
            CLI_ORIGIN,
            NewMerchant(name=name, country=country, mcc=mcc, default_currency=currency),
        )
        body = merchant_json(merchant)
        if with_key:
            issued = await container.merchants.create_key(SYSTEM_CLI, CLI_ORIGIN, merchant.id, None)
            body["key"] = key_json(issued.key, issued.secret)
        return body

    with _database(settings) as url:
        _require_migrated(url)
        try:
            body = _with_container(settings, url, create)
        except ClearportError as exc:
            _fail(exc)
            return
    if as_json:
        print(json.dumps(body))
    else:
        Console().print(f"Merchant {body['id']} created.")
        if "key" in body:
            Console().print(f"Secret key, shown once: {body['key']['secret']}")
