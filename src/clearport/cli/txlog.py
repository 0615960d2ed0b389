"""`clearport txlog seal|verify|export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from clearport.cli.context import in_migrated_container, start_command
from clearport.txlog.domain import SealedRow, Verdict
from clearport.txlog.service import CHAINS

if TYPE_CHECKING:
    from clearport.wiring import Container

txlog_app = typer.Typer(help="The hash-chained transaction and audit logs.", no_args_is_help=True)


def _report(verdict: Verdict) -> bool:
    if verdict.ok:
        Console().print(
            f"{verdict.chain}: OK, {verdict.length} entries, {verdict.checkpoints} checkpoints"
        )
        return True
    Console().print(
        f"{verdict.chain}: TAMPERED, first bad sequence number {verdict.first_bad_seq}: "
        f"{verdict.reason}"
    )
    return False


@txlog_app.command("seal")
def txlog_seal() -> None:
    """Seal every unsealed row now and write checkpoints."""

    async def work(container: Container) -> None:
        for chain in CHAINS:
            total = 0
            while True:
                result = await container.chains.seal(chain, 10_000)
                total += result.sealed
                if result.sealed == 0:
                    break
            Console().print(f"{chain}: sealed {total}")

    in_migrated_container(start_command(), work)


@txlog_app.command("verify")
def txlog_verify(
    chain: str = typer.Option("all", help="txlog | audit | all"),
    file: Path | None = typer.Option(None, "--file", help="Verify an exported file instead."),
) -> None:
    """Check the chain against its hashes and the signed checkpoints; name the first bad seq."""
    chains = CHAINS if chain == "all" else (chain,)

    async def work(container: Container) -> bool:
        ok = True
        for name in chains:
            if file is not None:
                rows = _read_export(file, name)
                verdict = await container.chains.verify_rows(name, rows)
            else:
                verdict = await container.chains.verify(name)
            ok = _report(verdict) and ok
        return ok

    if not in_migrated_container(start_command(), work):
        raise typer.Exit(1)


@txlog_app.command("export")
def txlog_export(out: Path = typer.Option(..., "--out", help="JSON-lines file to write.")) -> None:
    """Export both chains (rows as sealed, with their hashes) for offline verification."""

    async def work(container: Container) -> dict[str, int]:
        rows_per_chain: dict[str, int] = {}
        with out.open("w") as handle:
            for name in CHAINS:
                rows = await container.chains.export(name)
                rows_per_chain[name] = len(rows)
                for row in rows:
                    handle.write(
                        json.dumps(
                            {
                                "chain": name,
                                "seq": row.seq,
                                "source_seq": row.source_seq,
                                "hash": row.stored_hash.hex(),
                                "row": row.row_text,
                            }
                        )
                        + "\n"
                    )
        return rows_per_chain

    exported = in_migrated_container(start_command(), work)
    counts = ", ".join(f"{rows} {chain} rows" for chain, rows in exported.items())
    Console().print(f"Exported {counts} to {out}.", soft_wrap=True)


def _read_export(path: Path, chain: str) -> list[SealedRow]:
    rows: list[SealedRow] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        if item["chain"] != chain:
            continue
        rows.append(
            SealedRow(
                int(item["seq"]), int(item["source_seq"]), bytes.fromhex(item["hash"]), item["row"]
            )
        )
    return rows
