"""`clearport merchants shred|create`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from clearport.access.domain import SYSTEM_CLI
from clearport.cli.context import CLI_ORIGIN, in_migrated_container_or_fail, start_command
from clearport.merchants.service import NewMerchant

if TYPE_CHECKING:
    from clearport.wiring import Container

merchants_app = typer.Typer(help="Merchants.", no_args_is_help=True)


@merchants_app.command("shred")
def shred(
    merchant_id: str = typer.Argument(..., help="mer_… id of a closed merchant."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Crypto-shred a closed merchant: destroy its DEKs; its card data becomes unrecoverable."""
    settings = start_command()
    if not yes:
        typer.confirm(
            f"Destroy every card-data key of {merchant_id}? This cannot be undone.", abort=True
        )
    destroyed = in_migrated_container_or_fail(
        settings, lambda c: c.vault.shred(SYSTEM_CLI, CLI_ORIGIN, merchant_id)
    )
    Console().print(f"Merchant {merchant_id} shredded: {destroyed} data key(s) destroyed.")


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
    from clearport.http.schemas import key_json, merchant_json

    settings = start_command()

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

    body = in_migrated_container_or_fail(settings, create)
    if as_json:
        print(json.dumps(body))
    else:
        Console().print(f"Merchant {body['id']} created.")
        if "key" in body:
            Console().print(f"Secret key, shown once: {body['key']['secret']}")
