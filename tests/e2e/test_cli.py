"""The `clearport` command, run as a subprocess against real databases."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from clearport.wiring import schema_head
from tests.support import TEST_SERVER_SECRET, Api

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "clearport.cli"]


def _run(
    args: list[str], database_url: str | None, data_dir: Path, log_level: str = "WARNING"
) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it; without a database_url, on the embedded server."""
    env = {
        **os.environ,
        "CLEARPORT_DATA_DIR": str(data_dir),
        "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
        "CLEARPORT_LOG_LEVEL": log_level,
    }
    if database_url is None:
        env.pop("DATABASE_URL", None)
    else:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def empty_database(database_url: str) -> Iterator[str]:
    """A second, un-migrated database on the same server."""
    name = f"clearport_empty_{secrets.token_hex(4)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    yield url
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_serve_refuses_unmigrated_database(empty_database: str, tmp_path: Path) -> None:
    result = _run(["serve", "--port", "1"], empty_database, tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if "migrated" in line]
    assert lines == ["The database is not migrated: run `clearport db upgrade`."]
    upgraded = _run(["db", "upgrade"], empty_database, tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT count(*) FROM merchants").fetchone() == (0,)


def test_db_upgrade_prints_the_schema_and_no_migration_log(
    empty_database: str, tmp_path: Path
) -> None:
    # At the default log level: alembic's INFO lines ("Context impl PostgresqlImpl.", one per
    # migration) are not for the operator.
    result = _run(["db", "upgrade"], empty_database, tmp_path, log_level="INFO")
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", f"Database at schema {schema_head()}.\n")


def test_db_upgrade_on_the_embedded_server_without_a_runtime_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without XDG_RUNTIME_DIR (containers, cron) platformdirs warns when pgserver is imported.
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    result = _run(["db", "upgrade"], None, tmp_path, log_level="INFO")
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", f"Database at schema {schema_head()}.\n")


def test_operator_and_merchant_creation_print_json(api: Api, tmp_path: Path) -> None:
    operator = _run(
        ["operators", "create", "--role", "security", "--json"], api.database_url, tmp_path
    )
    assert operator.returncode == 0, operator.stderr
    key = json.loads(operator.stdout)
    assert key["role"] == "security" and key["secret"].startswith("ok_")
    assert api.call("GET", "/v1/audit_events", key["secret"]).status_code == 200

    merchant = _run(
        [
            "merchants",
            "create",
            "--name",
            "Cli Shop",
            "--currency",
            "eur",
            "--country",
            "FR",
            "--json",
        ],
        api.database_url,
        tmp_path,
    )
    assert merchant.returncode == 0, merchant.stderr
    body = json.loads(merchant.stdout)
    assert body["id"].startswith("mer_") and body["default_currency"] == "eur"
    assert body["key"]["secret"].startswith("sk_test_")
    fetched = api.call("GET", f"/v1/merchants/{body['id']}", key["secret"])
    assert fetched.status_code == 200 and fetched.json()["name"] == "Cli Shop"

    bad = _run(
        ["merchants", "create", "--name", "X", "--currency", "xyz"], api.database_url, tmp_path
    )
    assert bad.returncode == 1 and "currency" in bad.stderr
    bad_role = _run(["operators", "create", "--role", "root"], api.database_url, tmp_path)
    assert bad_role.returncode != 0
