"""`clearport cloud bootstrap`: the AWS resources the settings name, created where missing."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from clearport.cli.context import start_command

cloud_app = typer.Typer(help="AWS resources (S3, DynamoDB, KMS).", no_args_is_help=True)


@cloud_app.command("bootstrap")
def bootstrap() -> None:
    """Create the S3 bucket, the DynamoDB table and the KMS keys (behind `alias/…` ids) that
    the settings name and that do not exist yet. Safe to run again. Meant for moto (compose)
    and a first set-up: production creates them with its infrastructure code."""
    from clearport.wiring import bootstrap_cloud

    created = asyncio.run(bootstrap_cloud(start_command()))
    Console().print("Created: " + ", ".join(created) if created else "Nothing to create.")
