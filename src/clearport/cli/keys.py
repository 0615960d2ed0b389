"""`clearport keys ...`: key custody (split, combine) and rotation.

The ceremony these commands serve is described in docs/key-ceremony.md; `clearport merchants
shred` is in cli/merchants.py.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from clearport.access.domain import SYSTEM_CLI
from clearport.cli.context import (
    CLI_ORIGIN,
    console,
    fail,
    in_migrated_container_or_fail,
    start_command,
)
from clearport.core.errors import ClearportError
from clearport.vault.custody import combine_components, parse_component, split_master_key

if TYPE_CHECKING:
    from clearport.config import Settings
    from clearport.vault.ports import KeyCustody
    from clearport.vault.service import RotationResult

keys_app = typer.Typer(help="Card-data keys: dual control, rotation.", no_args_is_help=True)


def _local_provider(settings: Settings) -> KeyCustody:
    from clearport.wiring import local_key_custody

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
    provider = _local_provider(start_command())
    try:
        master = provider.master_key()
    except ClearportError as exc:
        fail(exc)
    # Plain print: a wrapped or styled line would corrupt a component.
    print(f"Key check value (KCV): {provider.kcv()}")
    for index, component in enumerate(split_master_key(master, parts), start=1):
        print(f"component {index}/{parts}: {component}")
    if remove_master:
        path = provider.master_key_file
        if not provider.master_key_configured and path.exists():
            path.unlink()
            Console().print(f"Removed {path}: combine {parts} components to unlock the keyring.")


@keys_app.command("combine")
def combine(
    parts: int = typer.Option(2, "--parts", min=2, max=16, help="Number of components."),
) -> None:
    """Custodians type their components in turn; the result unlocks the keyring."""
    provider = _local_provider(start_command())
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
    result = in_migrated_container_or_fail(
        start_command(),
        lambda c: c.vault.rotate_kek(
            SYSTEM_CLI, CLI_ORIGIN, batch_size=batch_size, max_batches=max_batches
        ),
    )
    _report(result, as_json)


@keys_app.command("rotate-dek")
def rotate_dek(
    merchant: str = typer.Option(..., "--merchant", help="mer_… id."),
    batch_size: int = typer.Option(500, min=1, max=10_000, help="Records per transaction."),
    max_batches: int | None = typer.Option(None, min=1, help="Stop after this many batches."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """New DEK version for a merchant; re-encrypt its old records. Resumable."""
    result = in_migrated_container_or_fail(
        start_command(),
        lambda c: c.vault.rotate_dek(
            SYSTEM_CLI, CLI_ORIGIN, merchant, batch_size=batch_size, max_batches=max_batches
        ),
    )
    _report(result, as_json)


@keys_app.command("status")
def status() -> None:
    """Current KEK, DEKs per KEK and rotations still running (JSON)."""
    body = in_migrated_container_or_fail(start_command(), lambda c: c.vault.status(SYSTEM_CLI))
    print(json.dumps(body, indent=2))
