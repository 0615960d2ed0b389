"""The connector simulators (`clearport simulate`), processes of their own."""

from __future__ import annotations


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
) -> None:
    """Run the `http` or `iso8583` simulator host until it is stopped."""
    from clearport.connectors.processor_sim.processor import Faults

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
            ),
            host,
            port,
        )
        return
    raise ValueError(f"unknown simulator {kind!r}")
