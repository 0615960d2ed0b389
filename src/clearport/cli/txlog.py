"""`clearport txlog seal|verify|export|public-key`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from clearport.cli.context import in_migrated_container, start_command
from clearport.txlog.domain import MirrorReport, Verdict
from clearport.txlog.service import CHAINS, EXPORTS_PREFIX

if TYPE_CHECKING:
    from clearport.config import Settings
    from clearport.txlog.mirror import TxlogMirror
    from clearport.txlog.ports import SignatureVerifier
    from clearport.wiring import Container

txlog_app = typer.Typer(help="The hash-chained transaction and audit logs.", no_args_is_help=True)


def _report(verdict: Verdict) -> bool:
    unsealed = (
        f", {verdict.unsealed} unsealed (newer than the last seal)" if verdict.unsealed else ""
    )
    if verdict.ok:
        Console().print(
            f"{verdict.chain}: OK, {verdict.length} entries, {verdict.checkpoints} checkpoints"
            f"{unsealed}",
            soft_wrap=True,
        )
        return True
    Console().print(
        f"{verdict.chain}: TAMPERED, first bad sequence number {verdict.first_bad_seq}: "
        f"{verdict.reason}",
        soft_wrap=True,
    )
    return False


def _mirror_report(report: MirrorReport) -> bool:
    out = Console()
    status = "OK" if report.ok else "DIFFERS"
    out.print(
        f"dynamodb: {status}, {report.compared} entries compared, mirrored through "
        f"{report.mirrored_through}, {report.pending} pending",
        soft_wrap=True,
    )
    for name, seqs in (("missing", report.missing), ("extra", report.extra)):
        if seqs:
            out.print(f"  {name} ({len(seqs)}): {_listed(seqs)}", soft_wrap=True)
    if report.differing:
        shown = ", ".join(f"{seq} ({'/'.join(attrs)})" for seq, attrs in report.differing[:50])
        out.print(f"  differing ({len(report.differing)}): {shown}", soft_wrap=True)
    return report.ok


def _listed(seqs: list[int]) -> str:
    return ", ".join(str(s) for s in seqs[:50]) + (" …" if len(seqs) > 50 else "")


@txlog_app.command("seal")
def txlog_seal() -> None:
    """Seal every unsealed row now, sign a checkpoint of each head and copy it to storage."""

    async def work(container: Container) -> None:
        for chain in CHAINS:
            total = 0
            while True:
                result = await container.chains.seal(chain, 10_000, checkpoint_now=True)
                total += result.sealed
                if result.checkpoint_error:
                    Console().print(f"{chain}: checkpoint failed: {result.checkpoint_error}")
                if result.sealed == 0:
                    break
            copied = await container.chains.copy_checkpoints(chain, f"cli:{os.getpid()}", 100_000)
            Console().print(f"{chain}: sealed {total}, {copied} checkpoints copied to storage")

    in_migrated_container(start_command(), work)


def _verifier(settings: Settings, public_key: Path | None) -> SignatureVerifier:
    from clearport.wiring import checkpoint_signer_for, checkpoint_verifier

    try:
        if public_key is not None:
            return checkpoint_verifier(public_key.read_bytes())
        if settings.key_provider == "local" and not settings.keyring_file.exists():
            # Never mint a keyring (and a key nothing was signed with) just to verify.
            raise ValueError(f"there is no keyring at {settings.keyring_file}")
        pem = asyncio.run(checkpoint_signer_for(settings).public_key_pem())
        return checkpoint_verifier(pem)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"no usable public key: {exc}", param_hint="--public-key") from exc


@txlog_app.command("verify")
def txlog_verify(
    chain: str = typer.Option("all", help="txlog | audit | all"),
    file: Path | None = typer.Option(
        None, "--file", help="Verify an exported file instead (offline: no database needed)."
    ),
    public_key: Path | None = typer.Option(
        None,
        "--public-key",
        help="The trusted checkpoint key (PEM, from `txlog public-key`); by default the key "
        "provider's.",
    ),
    against: str | None = typer.Option(
        None, "--against", help="'dynamodb': compare the DynamoDB mirror with PostgreSQL."
    ),
) -> None:
    """Check the chain against its hashes and signed checkpoints, naming the first bad seq;
    or compare the DynamoDB mirror. Exit 1 on any difference."""
    if chain not in (*CHAINS, "all"):
        raise typer.BadParameter("txlog, audit or all", param_hint="--chain")
    chains = CHAINS if chain == "all" else (chain,)
    settings = start_command()
    if against is not None:
        if against != "dynamodb":
            raise typer.BadParameter("the one mirror is 'dynamodb'", param_hint="--against")
        if not settings.dynamodb_table:
            raise typer.BadParameter(
                "no mirror: set CLEARPORT_DYNAMODB_TABLE", param_hint="--against"
            )

        async def compare(container: Container) -> bool:
            return _mirror_report(await _present_mirror(container).compare())

        if not in_migrated_container(settings, compare):
            raise typer.Exit(1)
        return
    verifier = _verifier(settings, public_key)
    if file is not None:
        if not _verify_file(file, chains, verifier):
            raise typer.Exit(1)
        return

    async def work(container: Container) -> bool:
        ok = True
        for name in chains:
            ok = _report(await container.chains.verify(name, verifier)) and ok
        return ok

    if not in_migrated_container(settings, work):
        raise typer.Exit(1)


def _present_mirror(container: Container) -> TxlogMirror:
    from clearport.core.errors import present

    return present(container.mirror, "CLEARPORT_DYNAMODB_TABLE is set")


def _verify_file(file: Path, chains: tuple[str, ...], verifier: SignatureVerifier) -> bool:
    from clearport.txlog.export_file import read_export
    from clearport.txlog.service import verify_export

    ok = True
    for name in chains:
        try:
            with file.open() as handle:
                rows, checkpoints = read_export(handle, name)
        except (OSError, ValueError) as exc:
            Console().print(f"{name}: cannot read {file}: {exc}")
            return False
        ok = _report(verify_export(name, rows, checkpoints, verifier)) and ok
    return ok


@txlog_app.command("export")
def txlog_export(
    out: Path | None = typer.Option(None, "--out", help="Also write the file here."),
) -> None:
    """Export both chains (rows as sealed, with their hashes, and the checkpoints that cover
    them) into object storage, for offline verification; `--out` keeps a local copy."""
    from clearport.txlog.export_file import export_lines

    async def work(container: Container) -> tuple[dict[str, int], str]:
        counts: dict[str, int] = {}
        scratch = Path(container.storage.scratch_dir())
        fd, name = tempfile.mkstemp(prefix="export-", suffix=".jsonl", dir=scratch)
        try:
            with os.fdopen(fd, "w") as handle:
                for chain in CHAINS:
                    export = await container.chains.export(chain)
                    counts[chain] = len(export.rows)
                    for line in export_lines(chain, export.rows, export.checkpoints):
                        handle.write(line + "\n")
            if out is not None:
                shutil.copyfile(name, out)
            # The key names what the file holds, so exporting the same chains again writes the
            # same object.
            key = f"{EXPORTS_PREFIX}/" + "-".join(f"{c}-{n}" for c, n in counts.items()) + ".jsonl"
            uri = await container.chains.put_export(key, name)
        finally:
            with contextlib.suppress(FileNotFoundError):  # put_file consumed it
                os.unlink(name)
        return counts, uri

    exported, uri = in_migrated_container(start_command(), work)
    counts = ", ".join(f"{rows} {chain} rows" for chain, rows in exported.items())
    where = f"{out} and {uri}" if out is not None else uri
    Console().print(f"Exported {counts} to {where}.", soft_wrap=True)


@txlog_app.command("public-key")
def txlog_public_key(
    out: Path | None = typer.Option(None, "--out", help="Write the PEM here instead."),
) -> None:
    """Print the public key that checks the checkpoints (PEM): all `verify` needs."""
    from clearport.wiring import checkpoint_signer_for

    pem = asyncio.run(checkpoint_signer_for(start_command()).public_key_pem())
    if out is None:
        print(pem.decode(), end="")
    else:
        out.write_bytes(pem)
