"""`clearport reconcile --connector X FILE`: import a processor's settlement file and match it;
`clearport reconcile-fees --connector X --currency usd --percent-bps 20 --fixed-minor 5`: the
connector's agreed fees, which settlement files are checked against."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from clearport.access.domain import SYSTEM_CLI
from clearport.cli.context import CLI_ORIGIN, in_migrated_container_or_fail, start_command

if TYPE_CHECKING:
    from clearport.wiring import Container

_SHOWN_REJECTED = 20


def reconcile(
    file: Path = typer.Argument(..., help="The settlement file (CSV, docs/reconciliation.md)."),
    connector: str = typer.Option(..., "--connector", help="The connector's name."),
    as_json: bool = typer.Option(False, "--json", help="Print the run as one JSON object."),
) -> None:
    """Reconcile a settlement file (the same file again changes nothing)."""
    from clearport.reconciliation.domain import run_shown
    from clearport.reconciliation.service import sha256_of

    if not file.is_file():
        raise typer.BadParameter(f"no such file: {file}", param_hint="FILE")
    # The file's digest (a second per 700 MB) is read while the command starts, checks the
    # schema, builds its container and stages the file: hashlib releases the GIL.
    hashing = ThreadPoolExecutor(max_workers=1)
    digest = hashing.submit(sha256_of, file)
    hashing.shutdown(wait=False)
    settings = start_command()

    async def work(container: Container) -> dict[str, Any]:
        service = container.reconciliation
        # The digest is awaited once the file is staged (the service's order): hashing a
        # large file outlasts the start-up (0.8 s of waiting at 10 M lines, measured).
        run, new, steps = await service.reconcile(
            SYSTEM_CLI, CLI_ORIGIN, connector, file, asyncio.wrap_future(digest)
        )
        body = run_shown(run)
        body["replayed"] = not new
        body["steps_s"] = steps
        body["rejected_lines"] = [
            {"line": r.line_number, "reason": r.reason}
            for r in await service.rejected_lines(SYSTEM_CLI, run.id, _SHOWN_REJECTED)
        ]
        return body

    body = in_migrated_container_or_fail(settings, work)
    if as_json:
        print(json.dumps(body))
        return
    out = Console()
    out.print(
        f"Run {body['id']} ({body['connector']}, {body['period_start']}.."
        f"{body['period_end']}){' [replayed: the same file]' if body['replayed'] else ''}: "
        f"{body['lines']} lines, {body['matched']} matched"
    )
    for kind in (
        "missing_internal",
        "missing_external",
        "amount_mismatch",
        "currency_mismatch",
        "fee_difference",
        "duplicate",
        "matched_late",
        "disputes_created",
        "rejected",
    ):
        if body[kind]:
            out.print(f"  {kind}: {body[kind]}")
    for line in body["rejected_lines"]:
        out.print(f"  line {line['line']}: {line['reason']}")


def reconcile_fees(
    connector: str = typer.Option(..., "--connector"),
    currency: str = typer.Option(..., "--currency", help="ISO 4217, e.g. usd"),
    percent_bps: int = typer.Option(..., "--percent-bps", min=0, max=10_000),
    fixed_minor: int = typer.Option(0, "--fixed-minor", min=0),
) -> None:
    """Set what a connector agreed to charge per transaction in a currency."""
    from clearport.core.money import parse_currency

    settings = start_command()
    code = parse_currency(currency.lower())

    async def work(container: Container) -> None:
        await container.reconciliation.set_fee_schedule(
            SYSTEM_CLI, CLI_ORIGIN, connector, code, percent_bps, fixed_minor
        )

    in_migrated_container_or_fail(settings, work)
    Console().print(f"{connector} {code}: {percent_bps} bps + {fixed_minor}")
