"""The key-custody and rotation commands, run as an operator runs them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clearport.config import Settings
from clearport.vault.custody import parse_component
from clearport.vault.domain import CardDataDestroyed
from clearport.wiring import Container
from tests.integration.test_vault_rotation import NUMBERS, close, reveal, tokenize
from tests.support import TEST_SERVER_SECRET, Api, pg

pytestmark = pytest.mark.slow

# --- the CLI, as an operator runs it ----------------------------------------------------------


def run_cli(args: list[str], database_url: str, settings: Settings, **env: str) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "clearport.cli", *args],
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "CLEARPORT_DATA_DIR": str(settings.data_dir),
            "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
            "CLEARPORT_LOG_LEVEL": "WARNING",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_cli_rotate_and_shred(
    api: Api, vault_container: Container, settings: Settings
) -> None:
    admin = api.operator()
    merchant_id, _ = api.merchant(admin)
    token = await tokenize(vault_container, merchant_id, NUMBERS[0])
    kek = run_cli(["keys", "rotate-kek", "--json"], api.database_url, settings)
    assert kek.returncode == 0, kek.stderr
    assert '"finished": true' in kek.stdout
    status = run_cli(["keys", "status"], api.database_url, settings)
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert state["current_kek"] == json.loads(kek.stdout)["target"]
    assert state["deks_per_kek"] == {state["current_kek"]: 1}
    assert state["running_rotations"] == []
    dek = run_cli(
        ["keys", "rotate-dek", "--merchant", merchant_id, "--json"], api.database_url, settings
    )
    assert dek.returncode == 0, dek.stderr
    assert '"target": "2"' in dek.stdout
    assert await reveal(vault_container, merchant_id, token) == NUMBERS[0]
    refused = run_cli(["merchants", "shred", merchant_id, "--yes"], api.database_url, settings)
    assert refused.returncode == 1 and "closed" in refused.stderr
    await close(vault_container, merchant_id)
    shred = run_cli(["merchants", "shred", merchant_id, "--yes"], api.database_url, settings)
    assert shred.returncode == 0, shred.stderr
    with pytest.raises(CardDataDestroyed):
        await reveal(vault_container, merchant_id, token)


def test_cli_split_and_combine(api: Api, tmp_path: Path, settings: Settings) -> None:
    keyring = tmp_path / "keys" / "keyring.json"
    out_dir = tmp_path / "components"
    env = {"CLEARPORT_KEYRING": str(keyring)}
    split = run_cli(
        ["keys", "split", "--parts", "3", "--out-dir", str(out_dir), "--remove-master"],
        api.database_url,
        settings,
        **env,
    )
    assert split.returncode == 0, split.stderr
    # Each component is in a file of its own, readable by its owner only; the terminal shows
    # where they are and the KCV, never a component.
    files = sorted(out_dir.iterdir())
    assert [f.name for f in files] == [f"component-{i}-of-3.txt" for i in (1, 2, 3)]
    assert stat.S_IMODE(out_dir.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    components = [f.read_text().strip() for f in files]
    assert all(parse_component(c) for c in components) and len(set(components)) == 3
    listed = [line for line in split.stdout.splitlines() if line.startswith("component")]
    assert listed == [f"component {i}/3: {f}" for i, f in enumerate(files, start=1)]
    kcv = split.stdout.split("Key check value (KCV): ", 1)[1].split()[0]
    assert not any(c.split("-")[0] in split.stdout + split.stderr for c in components)
    assert not (keyring.parent / "master.key").exists()

    def combine(parts: int, lines: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "clearport.cli", "keys", "combine", "--parts", str(parts)],
            input="\n".join(lines) + "\n",
            env={
                **os.environ,
                "DATABASE_URL": api.database_url,
                "CLEARPORT_DATA_DIR": str(settings.data_dir),
                "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
                **env,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    wrong = combine(2, components[:2])
    assert wrong.returncode == 1
    assert not (keyring.parent / "master.key").exists()
    right = combine(3, components)
    assert right.returncode == 0, right.stderr
    assert (keyring.parent / "master.key").exists()
    assert not any(c.split("-")[0] in right.stdout + right.stderr for c in components)

    # Components are never overwritten: a second split into the same directory is refused.
    split_again = ["keys", "split", "--parts", "3", "--out-dir", str(out_dir)]
    again = run_cli(split_again, api.database_url, settings, **env)
    assert again.returncode == 1 and "already holds components" in " ".join(again.stderr.split())
    assert [f.read_text().strip() for f in sorted(out_dir.iterdir())] == components

    # Both commands are audited: who, when, parts, KCV; never a component.
    with pg(api.database_url) as conn:
        rows = conn.execute(
            "SELECT event_type, outcome, actor, origin_ip, resource, details, occurred_at"
            " FROM audit_events WHERE resource = 'master_key' ORDER BY occurred_at"
        ).fetchall()
        every_row = str(conn.execute("SELECT * FROM audit_events").fetchall())
    assert [(r[0], r[1]) for r in rows] == [
        ("vault.master_key_split", "success"),
        ("vault.master_key_combined", "failure"),
        ("vault.master_key_combined", "success"),
    ]
    assert all((r[2], r[3], r[4]) == ("system:cli", "local", "master_key") for r in rows)
    assert all(r[5]["run_by"] and r[6] is not None for r in rows)
    split_row, failed_row, combined_row = (r[5] for r in rows)
    assert (split_row["parts"], split_row["kcv"], split_row["remove_master"]) == (3, kcv, True)
    assert (failed_row["parts"], failed_row["reason"]) == (2, "kcv_mismatch")
    assert (combined_row["parts"], combined_row["kcv"]) == (3, kcv)
    assert not any(c.split("-")[0] in every_row for c in components)
