"""`clearport bins import FILE` (or `--sample`): replace the BIN table.

The file is CSV with the header `bin_from,bin_to,brand,funding,category,issuer_country`:
`bin_from`/`bin_to` digit strings of equal length (6 to 8, inclusive), `funding` one of credit,
debit, prepaid, `category` consumer or commercial, `issuer_country` ISO 3166 alpha-2 in upper
case. Ranges nest or are disjoint; the narrowest wins. A bad line is named and nothing changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from clearport.cli.context import in_migrated_container_or_fail, start_command

if TYPE_CHECKING:
    from clearport.wiring import Container

bins_app = typer.Typer(help="BIN data: brand, funding and issuer country by card prefix.")


@bins_app.command("import")
def import_bins(
    file: Path | None = typer.Argument(None, help="A BIN file (CSV, the header above)."),
    sample: bool = typer.Option(
        False, "--sample", help="The sample shipped with Clearport (test cards, test ranges)."
    ),
) -> None:
    """Replace the BIN table with FILE (every process reloads it before its next card)."""
    from clearport.bins.service import SAMPLE_FILE

    source = SAMPLE_FILE if sample else file
    if source is None or (sample and file is not None):
        raise typer.BadParameter("give FILE or --sample (one of them)")
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {source}: {exc}", param_hint="FILE") from None
    settings = start_command()

    async def work(container: Container) -> int:
        return await container.bins.import_text(text)

    count = in_migrated_container_or_fail(settings, work)
    Console().print(f"Imported {count} BIN ranges from {source.name}.")
