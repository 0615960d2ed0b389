"""The connector simulators (`clearport simulate`), processes of their own."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clearport.connectors.http_acquirer.host import InProcessHosts


def serve_simulator(
    kind: str,
    *,
    host: str,
    port: int,
    database_url: str,
    name: str,
    schema: str | None,
    api_key: str | None,
    latency_ms: int,
    error_rate: float,
    timeout_rate: float,
    silent: bool,
    malformed: str | None,
    seed: int | None,
    settlement_file_dir: Path | None = None,
) -> None:
    """Run the `http` or `iso8583` simulator host until it is stopped; with
    `settlement_file_dir`, writing its day's settlement file there (docs/reconciliation.md)."""
    from clearport.connectors.processor_sim.processor import Faults
    from clearport.connectors.processor_sim.settlement_file import SettlementFileOptions

    settlement_file = (
        None
        if settlement_file_dir is None
        else SettlementFileOptions(
            settlement_file_dir,
            "merchant_reference" if kind == "http" else "retrieval_reference_number",
        )
    )

    faults = Faults(
        latency_ms=latency_ms,
        error_rate=error_rate,
        timeout_rate=timeout_rate,
        silent=silent,
        seed=seed,
    )
    if kind == "http":
        from clearport.connectors.http_acquirer import host as http_host

        http_host.serve(
            http_host.HttpHostOptions(
                database_url,
                schema=schema or "simulator_http",
                name=name,
                api_key=api_key,
                faults=faults,
                settlement_file=settlement_file,
            ),
            host,
            port,
        )
        return
    if kind == "iso8583":
        from clearport.connectors.iso8583 import host as iso_host

        iso_host.serve(
            iso_host.IsoHostOptions(
                database_url,
                schema=schema or "simulator_iso8583",
                name=name,
                faults=faults,
                malformed=None if malformed is None else iso_host.Malformation(malformed),
                settlement_file=settlement_file,
            ),
            host,
            port,
        )
        return
    raise ValueError(f"unknown simulator {kind!r}")


def in_process_hosts(database_url: str, schema: str, names: tuple[str, ...]) -> InProcessHosts:
    """Simulated HTTP acquirer hosts served in this process, for the money simulation."""
    from clearport.connectors.http_acquirer.host import InProcessHosts

    return InProcessHosts(database_url, schema, names)
