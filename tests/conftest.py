"""Session fixtures for the integration and end-to-end tiers: a fresh PostgreSQL database per
run, migrated, and a real server. The unit tier asks for none of them, so it starts no database
and imports none of this (everything heavy is imported inside the fixtures).

DATABASE_URL (a server where we may CREATE DATABASE) is used when set; otherwise an embedded
PostgreSQL (pgserver) is started in a temporary directory. Each test is isolated by truncating
every table afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings as hypothesis_settings

if TYPE_CHECKING:
    import httpx

    from clearport.config import Settings
    from clearport.wiring import Container
    from tests.support import Api, ThreadedServer

# Tests never assert wall-clock times, hypothesis's per-example deadline (200 ms) included: on
# a loaded machine it failed examples that were merely slow (a routing-rules property test).
hypothesis_settings.register_profile("clearport", deadline=None)
hypothesis_settings.load_profile("clearport")

_TMP = Path(tempfile.mkdtemp(prefix="clearport-test-"))
LOG_FILE = _TMP / "clearport.log"


def _with_database(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    import psycopg
    from psycopg import sql

    from clearport.wiring import upgrade_database

    server: Any = None
    base = os.environ.get("DATABASE_URL")
    if not base:
        import pgserver

        server = pgserver.get_server(_TMP / "pgdata", cleanup_mode="stop")
        base = server.get_uri("postgres")
    name = f"clearport_test_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_database(base, name)
    upgrade_database(url)
    yield url
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    if server is not None:
        server.cleanup()


@pytest.fixture(scope="session")
def settings() -> Settings:
    from clearport.config import Settings
    from tests.support import TEST_SERVER_SECRET

    return Settings(
        data_dir=_TMP / "data",
        secret_key=TEST_SERVER_SECRET,  # type: ignore[arg-type]
        rate_limit_requests=100_000,
        # Payments go to the built-in simulator whatever a test registers: tests of other
        # connectors build a container of their own.
        connectors_default_order="simulator",
    )


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's server (KMS, S3, DynamoDB over HTTP), one per session."""
    from tests.aws_support import AWS_ENV, moto_server

    os.environ.update(AWS_ENV)  # boto3 signs every request, moto accepts any credentials
    with moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def log_file() -> Path:
    return LOG_FILE


@pytest.fixture(scope="session")
def server(database_url: str, settings: Settings) -> Iterator[ThreadedServer]:
    from clearport.http.app import create_app
    from clearport.logs import configure_logging
    from clearport.wiring import build_container
    from tests.support import ThreadedServer

    configure_logging("INFO", "json", stream=LOG_FILE.open("a", buffering=1))
    container = build_container(settings, database_url)
    srv = ThreadedServer(create_app(container))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
async def vault_container(database_url: str, settings: Settings) -> AsyncIterator[Container]:
    """A second process's worth of services sharing the server's database and keyring."""
    from clearport.wiring import build_container

    container = build_container(settings, database_url)
    await container.start()
    yield container
    await container.stop()


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    import httpx

    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture
def api(server: ThreadedServer, database_url: str, http: httpx.Client) -> Iterator[Api]:
    from tests.support import Api

    yield Api(server.url, database_url, http)
    truncate_all(database_url)


def truncate_all(database_url: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ]
        if tables:
            # Replica mode skips the append-only triggers; only the test harness does this.
            conn.execute("SET session_replication_role = replica")
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in tables)
                )
            )
        # What the servers cache of the emptied tables (the active rule sets, the BIN table) is
        # announced gone, as an activation or an import would announce it.
        for topic in ("routing_rules", "risk_rules", "bins"):
            conn.execute(
                "SELECT pg_notify('clearport_cache_invalidation', %s)",
                (json.dumps({"topic": topic, "key": "all"}),),
            )
