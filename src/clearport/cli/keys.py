"""`clearport keys ...`: key custody (split, combine) and rotation.

The ceremony these commands serve is described in docs/key-ceremony.md; `clearport merchants
shred` is in cli/merchants.py.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from clearport.access.domain import SYSTEM_CLI
from clearport.cli.context import (
    CLI_ORIGIN,
    console,
    database,
    fail,
    in_migrated_container_or_fail,
    require_migrated,
    start_command,
    with_container,
)
from clearport.core.errors import ClearportError, present
from clearport.vault.custody import parse_component

if TYPE_CHECKING:
    from clearport.config import Settings
    from clearport.vault.ceremony import KeyCeremony
    from clearport.vault.service import RotationResult
    from clearport.wiring import Container

keys_app = typer.Typer(help="Card-data keys: dual control, rotation.", no_args_is_help=True)


def _run_by() -> str:
    """Who ran the ceremony command, for its audit row: the operating-system user."""
    try:
        return getpass.getuser()
    except OSError:  # no user name for this uid (a bare container)
        return f"uid:{os.getuid()}"


def _ceremony(container: Container) -> KeyCeremony:
    return present(container.key_ceremony, "the local keyring has a key ceremony")


def _local_keyring_or_exit(settings: Settings) -> None:
    if settings.key_provider != "local":
        console.print("[red]split/combine apply to the local keyring only.[/red]")
        raise typer.Exit(2)


@keys_app.command("split")
def split(
    parts: int = typer.Option(2, "--parts", min=2, max=16, help="Number of custodians."),
    out_dir: Path = typer.Option(
        ...,
        "--out-dir",
        help="Directory for the components: one 0600 file per custodian. A directory that "
        "already holds components is refused.",
    ),
    remove_master: bool = typer.Option(
        False,
        "--remove-master",
        help="Delete master.key afterwards: the keyring then opens only after `combine`.",
    ),
) -> None:
    """Split the keyring's master key into N components (XOR), each written to its own file
    for one custodian; prints only the files and the key check value. Audited."""
    settings = start_command()
    _local_keyring_or_exit(settings)
    result = in_migrated_container_or_fail(
        settings,
        lambda c: _ceremony(c).split(
            SYSTEM_CLI,
            CLI_ORIGIN,
            parts=parts,
            directory=out_dir,
            remove_master=remove_master,
            run_by=_run_by(),
        ),
    )
    out = Console()
    out.print(f"Key check value (KCV): {result.kcv}")
    for index, location in enumerate(result.locations, start=1):
        out.print(f"component {index}/{parts}: {location}", soft_wrap=True)
    if result.master_removed:
        out.print(f"Removed master.key: combine {parts} components to unlock the keyring.")


@keys_app.command("combine")
def combine(
    parts: int = typer.Option(2, "--parts", min=2, max=16, help="Number of components."),
) -> None:
    """Custodians type their components in turn; the result unlocks the keyring. Audited."""
    settings = start_command()
    _local_keyring_or_exit(settings)
    with database(settings) as url:
        require_migrated(url)  # before anyone types a component: the ceremony is audited
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
            kcv = with_container(
                settings,
                url,
                lambda c: _ceremony(c).combine(
                    SYSTEM_CLI, CLI_ORIGIN, components, run_by=_run_by()
                ),
            )
        except ClearportError as exc:
            fail(exc)
    Console().print(f"Master key restored (KCV {kcv} matches).")


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
