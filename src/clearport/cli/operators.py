"""`clearport operators create`."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from clearport.access.domain import SYSTEM_CLI, Role
from clearport.cli.context import CLI_ORIGIN, in_migrated_container, start_command

operators_app = typer.Typer(help="Operator keys.", no_args_is_help=True)


@operators_app.command("create")
def operators_create(
    role: Role = typer.Option(..., "--role", help="admin | support | finance | security"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create an operator key and print it once."""
    from clearport.http.schemas import key_json

    settings = start_command()
    issued = in_migrated_container(
        settings, lambda c: c.merchants.create_operator_key(SYSTEM_CLI, CLI_ORIGIN, role)
    )
    if as_json:
        print(json.dumps(key_json(issued.key, issued.secret)))
    else:
        Console().print(f"Operator key ({role}), shown once: {issued.secret}")
