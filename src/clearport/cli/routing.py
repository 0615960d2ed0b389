"""`clearport routing simulate --rules FILE --since … --until …`: replay a window of history
through candidate rules, as `POST /v1/routing_simulations` does.

`--rules` is a routing rule set as JSON (`{"rules": [...], "default": {"connectors": [...]}}`),
`--risk` a risk rule set (`{"rules": [...]}`), `--pricing` a merchant pricing object; each may
instead be a stored set's id (`rrs_…`, `rks_…`). `--since`/`--until` are ISO 8601 dates or
times (UTC unless they say otherwise) or Unix seconds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from clearport.access.domain import SYSTEM_CLI
from clearport.cli.context import in_migrated_container_or_fail, start_command

if TYPE_CHECKING:
    from clearport.wiring import Container

routing_app = typer.Typer(help="Routing: replay history through candidate rules.")


def _moment(value: str) -> datetime:
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use an ISO 8601 date or time, or Unix seconds") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _candidate(value: str | None) -> str | dict[str, Any] | None:
    if value is None or value.startswith(("rrs_", "rks_")):
        return value
    try:
        loaded = json.loads(Path(value).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{value}: {exc}") from None
    if not isinstance(loaded, dict):
        raise typer.BadParameter(f"{value}: a JSON object is expected")
    return loaded


@routing_app.command("simulate")
def simulate(
    since: str = typer.Option(..., help="Start of the window (inclusive)."),
    until: str = typer.Option(..., help="End of the window (exclusive), at most 31 days on."),
    rules: str | None = typer.Option(None, help="Candidate routing rules: a JSON file or rrs_…"),
    risk: str | None = typer.Option(None, help="Candidate risk rules: a JSON file or rks_…"),
    pricing: str | None = typer.Option(None, help="Candidate pricing: a JSON file."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Replay the payments of a window through candidate rules and report per connector."""
    from clearport.replay.service import SimulationRequest

    request = SimulationRequest(
        since=_moment(since),
        until=_moment(until),
        routing=_candidate(rules),
        risk=_candidate(risk),
        pricing=None if pricing is None else dict(json.loads(Path(pricing).read_text())),
    )
    settings = start_command()

    async def work(container: Container) -> dict[str, Any]:
        return await container.routing_simulations.simulate(SYSTEM_CLI, request)

    report = in_migrated_container_or_fail(settings, work)
    if as_json:
        print(json.dumps(report))
        return
    out = Console()
    out.print(
        f"{report['payments']} payments replayed: {report['rerouted']} rerouted, "
        f"{report['newly_blocked']['count']} newly blocked, {report['released']['count']} released"
    )
    table = Table("connector", "payments", "volume", "approval (proj.)", "fees (proj.)")
    for c in report["connectors"]:
        table.add_row(
            c["connector"],
            str(c["count"]),
            ", ".join(f"{v['amount']} {v['currency']}" for v in c["volume"]),
            f"{c['projected_approval_rate_bps'] / 100:.2f}%",
            ", ".join(f"{v['amount']} {v['currency']}" for v in c["projected_fees"]),
        )
    out.print(table)
