"""`clearport db upgrade`."""

from __future__ import annotations

import typer

from clearport.cli.context import console, database, start_command

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    from clearport.wiring import schema_head, upgrade_database

    settings = start_command()
    with database(settings) as url:
        upgrade_database(url)
        console.print(f"Database at schema {schema_head()}.")
