"""`clearport settle --date YYYY-MM-DD [--cutoff now]`, `clearport payouts mark po_… paid` and
`clearport payouts import-returns FILE`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from clearport.access.domain import SYSTEM_CLI
from clearport.cli.context import CLI_ORIGIN, in_migrated_container_or_fail, start_command

if TYPE_CHECKING:
    from clearport.wiring import Container

payouts_app = typer.Typer(help="Payouts.", no_args_is_help=True)


def _parse_date(value: str, today: date) -> date:
    if value == "today":
        return today
    if value == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD or 'today'") from None


def _parse_cutoff(value: str | None) -> datetime | None:
    if value is None:
        return None
    if value == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use 'now' or an ISO 8601 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def settle(
    date_: str = typer.Option(
        ..., "--date", help="Business date YYYY-MM-DD, 'today' or 'yesterday'."
    ),
    cutoff: str | None = typer.Option(
        None,
        help="'now' or an ISO timestamp; default: the configured cutoff after the date. A date "
        "whose run exists keeps its cutoff: another one is refused.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the run as one JSON object."),
) -> None:
    """Settle a business date (joins the date's run if it exists; safe to re-run)."""
    from clearport.http.representation import run_json

    settings = start_command()
    err = Console(stderr=True)

    async def work(container: Container) -> dict[str, Any]:
        service = container.settlement
        business_date = _parse_date(date_, service.today())
        with Progress(
            TextColumn("[bold]settling {task.fields[day]}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.completed}/{task.total} partitions"),
            TimeElapsedColumn(),
            console=err,
            disable=as_json,
        ) as bar:
            task = bar.add_task("settle", total=None, day=business_date.isoformat())

            def progress(_: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            run = await service.settle(
                SYSTEM_CLI,
                CLI_ORIGIN,
                business_date,
                cutoff_at=_parse_cutoff(cutoff),
                progress=progress,
            )
        return run_json(run)

    body = in_migrated_container_or_fail(settings, work)
    if as_json:
        print(json.dumps(body))
        return
    out = Console()
    stats = body["stats"]
    out.print(
        f"Run {body['id']} for {body['business_date']}: [bold]{body['status']}[/bold] "
        f"({stats.get('staged', 0)} items)"
    )
    for f in stats.get("payout_files", []):
        out.print(f"  payout file {f['key']} ({f['format']}, {f['count']} payouts)")


class PayoutOutcome(StrEnum):
    PAID = "paid"
    FAILED = "failed"


@payouts_app.command("mark")
def mark(
    payout_id: str = typer.Argument(..., help="po_…"),
    outcome: PayoutOutcome | None = typer.Argument(None, help="paid | failed", show_default=False),
    status: PayoutOutcome | None = typer.Option(
        None, "--status", help="The outcome as an option, for scripts written that way."
    ),
    failure_code: str | None = typer.Option(None, help="e.g. the ACH return code R01"),
) -> None:
    """Record a payout's outcome: `clearport payouts mark po_… paid` (or `--status paid`);
    `failed` returns the money to the merchant's available, and its next settlement pays it."""
    from clearport.http.representation import payout_json

    if outcome is not None and status is not None and outcome != status:
        raise typer.BadParameter(
            f"the outcome is '{outcome}' or '{status}', not both.", param_hint="OUTCOME"
        )
    chosen = outcome or status
    if chosen is None:
        raise typer.BadParameter(
            "missing: `clearport payouts mark po_… paid|failed`.", param_hint="OUTCOME"
        )
    payout = in_migrated_container_or_fail(
        start_command(),
        lambda c: c.settlement.mark_payout(
            SYSTEM_CLI, CLI_ORIGIN, payout_id, str(chosen), failure_code
        ),
    )
    print(json.dumps(payout_json(payout)))


@payouts_app.command("import-returns")
def import_returns(
    file: Path = typer.Argument(..., help="A NACHA return file from the bank."),
) -> None:
    """Mark the payouts a NACHA return file returns as failed, with their R-codes (R01 ...):
    their money goes back to available and the next settlement pays it again. Safe to import
    twice."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc.strerror}", param_hint="FILE") from None
    result = in_migrated_container_or_fail(
        start_command(),
        lambda c: c.settlement.import_returns(SYSTEM_CLI, CLI_ORIGIN, data),
    )
    print(
        json.dumps(
            {
                "failed": list(result.failed),
                "already_failed": list(result.already_failed),
                "unmatched": list(result.unmatched),
            }
        )
    )
