"""What `clearport` loads before it does anything: `--help` and the commands without a database
import neither the web stack nor the database stack (decision 0010). Each probe runs the Typer
app in a fresh interpreter and lists the modules it imported; timings are never asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support import Api

# Heavy, and needed only by commands that serve the API or reach the database.
WEB_AND_DATABASE = (
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "asyncpg",
    "sqlalchemy",
    "pyarrow",
    "boto3",
    "procrastinate",
)

PROBE = """
import json, sys
from clearport.cli.main import app
for args in json.loads(sys.argv[1]):
    try:
        app(args, prog_name="clearport")
    except SystemExit as done:
        if done.code:
            raise
print("MODULES " + json.dumps(sorted(sys.modules)))
"""


def _probe(invocations: list[list[str]], env: dict[str, str]) -> tuple[str, list[str]]:
    """What the invocations printed, and every module imported by the end."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(invocations)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    printed, _, last = result.stdout.rpartition("MODULES ")
    modules: list[str] = json.loads(last)
    return printed, modules


def _loaded(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules if m.split(".")[0] in packages})


def _every_help() -> list[list[str]]:
    """`--help` of the app, of every group and of every command, read off the app itself."""
    import typer.main

    from clearport.cli.main import app

    paths: list[list[str]] = [[]]

    def walk(group: Any, prefix: list[str]) -> None:
        for name, command in group.commands.items():
            paths.append([*prefix, name])
            if hasattr(command, "commands"):
                walk(command, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return [[*path, "--help"] for path in paths]


def test_help_imports_neither_the_web_nor_the_database_stack() -> None:
    helps = _every_help()
    assert ["keys", "split", "--help"] in helps and ["payouts", "--help"] in helps
    printed, modules = _probe(helps, {})
    assert printed.count("Usage: clearport") == len(helps)
    assert _loaded(modules, WEB_AND_DATABASE) == []
    assert "clearport.wiring" not in modules


def test_key_split_imports_no_web_stack(tmp_path: Path, api: Api) -> None:
    env = {
        "DATABASE_URL": api.database_url,
        "CLEARPORT_DATA_DIR": str(tmp_path),
        "CLEARPORT_KEYRING": str(tmp_path / "keys" / "keyring.json"),
    }
    out_dir = tmp_path / "components"
    printed, modules = _probe([["keys", "split", "--parts", "2", "--out-dir", str(out_dir)]], env)
    assert "component 2/2: " in printed and len(list(out_dir.iterdir())) == 2
    # The ceremony is audited, so it reaches the database (asyncpg, which also refuses an
    # un-migrated one: alembic is loaded only to migrate); it serves nothing and calls no KMS.
    assert _loaded(modules, ("fastapi", "starlette", "uvicorn", "boto3")) == []
    # Nor procrastinate: the container builds its settlement jobs on first use.
    assert _loaded(modules, ("alembic", "sqlalchemy", "procrastinate")) == []
