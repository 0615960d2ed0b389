"""The embedded PostgreSQL (pgserver) used when DATABASE_URL is not set."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_DB_NAME = "clearport"


def start_embedded(pgdata: Path) -> Any:
    """Start (or join) the embedded server in `pgdata`; returns the pgserver handle."""
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime directory when it is imported; without
        # XDG_RUNTIME_DIR (containers, cron, ssh without a login session) platformdirs warns
        # and falls back to a private directory under /tmp, which serves pgserver's lock file
        # as well. Other runtime-directory warnings still show.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from pgserver import get_server  # type: ignore[attr-defined]

    pgdata.mkdir(parents=True, exist_ok=True)
    # pgserver shares one server among processes using the same directory and stops it when
    # the last one exits ("stop" cleanup mode).
    server = get_server(pgdata, cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{_DB_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {_DB_NAME};")
    return server


def embedded_url(server: Any) -> str:
    uri: str = server.get_uri(_DB_NAME)
    return uri


@contextlib.contextmanager
def database_url_for(database_url: str | None, pgdata: Path) -> Iterator[str]:
    """Yield a usable database URL: the configured one, or the embedded server's.

    The embedded URL is also exported as DATABASE_URL so child processes (uvicorn workers)
    reach the same server instead of each starting their own.
    """
    if database_url:
        yield database_url
        return
    server = start_embedded(pgdata)
    url = embedded_url(server)
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        yield url
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
        server.cleanup()
