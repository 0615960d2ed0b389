"""`clearport keys ...` (key custody and rotation) and `clearport merchants shred`.

The ceremony these commands serve is described in docs/key-ceremony.md.
"""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console

from clearport.access.domain import SYSTEM_CLI

# `clearport.cli.main` imports this module to register it: reach its helpers through the
# module object, resolved at call time, so the circular import is harmless.
from clearport.cli import main as cli
from clearport.cli.context import CLI_ORIGIN
from clearport.config import Settings, load_settings
from clearport.core.errors import ClearportError
from clearport.logs import configure_logging
from clearport.vault.custody import combine_components, parse_component, split_master_key
from clearport.vault.ports import KeyCustody
from clearport.vault.service import RotationResult
from clearport.wiring import local_key_custody

keys_app = typer.Typer(help="Card-data keys: dual control, rotation.", no_args_is_help=True)
console = Console(stderr=True)


def _local_provider(settings: Settings) -> KeyCustody:
    custody = local_key_custody(settings)
    if custody is None:
        console.print("[red]split/combine apply to the local keyring only.[/red]")
        raise typer.Exit(2)
    return custody


@keys_app.command("split")
def split(
    parts: int = typer.Option(2, "--parts", min=2, max=16, help="Number of custodians."),
    remove_master: bool = typer.Option(
        False,
        "--remove-master",
        help="Delete master.key afterwards: the keyring then opens only after `combine`.",
    ),
) -> None:
    """Split the keyring's master key into N components (XOR), one per custodian."""
    settings = load_settings()
    provider = _local_provider(settings)
    try:
        master = provider.master_key()
    except ClearportError as exc:
        cli._fail(exc)
        return
    out = Console()
    # Plain print: a wrapped or styled line would corrupt a component.
    print(f"Key check value (KCV): {provider.kcv()}")
    for index, component in enumerate(split_master_key(master, parts), start=1):
        print(f"component {index}/{parts}: {component}")
    if remove_master:
        path = provider.master_key_file
        if not provider.master_key_configured and path.exists():
            path.unlink()
            out.print(f"Removed {path}: combine {parts} components to unlock the keyring.")


@keys_app.command("combine")
def combine(
    parts: int = typer.Option(2, "--parts", min=2, max=16, help="Number of components."),
) -> None:
    """Custodians type their components in turn; the result unlocks the keyring."""
    settings = load_settings()
    provider = _local_provider(settings)
    components = []
    for index in range(1, parts + 1):
        if sys.stdin.isatty():
            text = typer.prompt(f"component {index}/{parts}", hide_input=True)
        else:  # scripted ceremony: one component per line on stdin, never in argv
            text = sys.stdin.readline()
        try:
            components.append(parse_component(text))
        except ValueError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    try:
        provider.install_master_key(combine_components(components))
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    Console().print(f"Master key restored to {provider.master_key_file} (KCV matches).")


def _report(result: RotationResult, as_json: bool) -> None:
    body = {
        "rotation": result.rotation_id,
        "kind": result.kind,
        "target": result.target,
        "resumed": result.resumed,
        "processed": result.processed,
        "finished": result.finished,
        "retired": list(result.retired),
    }
    if as_json:
        print(json.dumps(body))
        return
    state = "finished" if result.finished else "interrupted (run again to resume)"
    verb = "resumed" if result.resumed else "started"
    Console().print(
        f"Rotation {result.rotation_id} ({result.kind} -> {result.target}) {verb}: "
        f"{result.processed} re-{'wrapped' if result.kind == 'kek' else 'encrypted'}, {state}."
    )
    if result.retired:
        Console().print(f"Retired KEKs: {', '.join(result.retired)}")


@keys_app.command("rotate-kek")
def rotate_kek(
    batch_size: int = typer.Option(500, min=1, max=10_000, help="DEKs per transaction."),
    max_batches: int | None = typer.Option(None, min=1, help="Stop after this many batches."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """New KEK version; re-wrap every DEK; retire old KEKs once unreferenced. Resumable."""
    settings = load_settings()
    configure_logging(settings.log_level, "console")
    with cli._database(settings) as url:
        cli._require_migrated(url)
        try:
            result = cli._with_container(
                settings,
                url,
                lambda c: c.vault.rotate_kek(
                    SYSTEM_CLI, CLI_ORIGIN, batch_size=batch_size, max_batches=max_batches
                ),
            )
        except ClearportError as exc:
            cli._fail(exc)
            return
    _report(result, as_json)


@keys_app.command("rotate-dek")
def rotate_dek(
    merchant: str = typer.Option(..., "--merchant", help="mer_… id."),
    batch_size: int = typer.Option(500, min=1, max=10_000, help="Records per transaction."),
    max_batches: int | None = typer.Option(None, min=1, help="Stop after this many batches."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """New DEK version for a merchant; re-encrypt its old records. Resumable."""
    settings = load_settings()
    configure_logging(settings.log_level, "console")
    with cli._database(settings) as url:
        cli._require_migrated(url)
        try:
            result = cli._with_container(
                settings,
                url,
                lambda c: c.vault.rotate_dek(
                    SYSTEM_CLI,
                    CLI_ORIGIN,
                    merchant,
                    batch_size=batch_size,
                    max_batches=max_batches,
                ),
            )
        except ClearportError as exc:
            cli._fail(exc)
            return
    _report(result, as_json)


@keys_app.command("status")
def status() -> None:
    """Current KEK, DEKs per KEK and rotations still running (JSON)."""
    settings = load_settings()
    configure_logging(settings.log_level, "console")
    with cli._database(settings) as url:
        cli._require_migrated(url)
        try:
            body = cli._with_container(settings, url, lambda c: c.vault.status(SYSTEM_CLI))
        except ClearportError as exc:
            cli._fail(exc)
            return
    print(json.dumps(body, indent=2))


def shred(
    merchant_id: str = typer.Argument(..., help="mer_… id of a closed merchant."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Crypto-shred a closed merchant: destroy its DEKs; its card data becomes unrecoverable."""
    settings = load_settings()
    configure_logging(settings.log_level, "console")
    if not yes:
        typer.confirm(
            f"Destroy every card-data key of {merchant_id}? This cannot be undone.", abort=True
        )
    with cli._database(settings) as url:
        cli._require_migrated(url)
        try:
            destroyed = cli._with_container(
                settings, url, lambda c: c.vault.shred(SYSTEM_CLI, CLI_ORIGIN, merchant_id)
            )
        except ClearportError as exc:
            cli._fail(exc)
            return
    Console().print(f"Merchant {merchant_id} shredded: {destroyed} data key(s) destroyed.")
