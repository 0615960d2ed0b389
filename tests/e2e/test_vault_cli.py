"""The key-custody and rotation commands, run as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clearport.config import Settings
from clearport.vault.domain import CardDataDestroyed
from clearport.wiring import Container
from tests.integration.test_vault_rotation import NUMBERS, close, reveal, tokenize
from tests.support import TEST_SERVER_SECRET, Api

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


def test_cli_split_and_combine(tmp_path: Path, database_url: str, settings: Settings) -> None:
    keyring = tmp_path / "keys" / "keyring.json"
    env = {"CLEARPORT_KEYRING": str(keyring)}
    split = run_cli(
        ["keys", "split", "--parts", "3", "--remove-master"], database_url, settings, **env
    )
    assert split.returncode == 0, split.stderr
    components = [
        line.split(": ", 1)[1] for line in split.stdout.splitlines() if line.startswith("component")
    ]
    assert len(components) == 3
    assert not (keyring.parent / "master.key").exists()
    wrong = subprocess.run(
        [sys.executable, "-m", "clearport.cli", "keys", "combine", "--parts", "2"],
        input="\n".join(components[:2]) + "\n",
        env={**os.environ, "CLEARPORT_DATA_DIR": str(settings.data_dir), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode == 1
    right = subprocess.run(
        [sys.executable, "-m", "clearport.cli", "keys", "combine", "--parts", "3"],
        input="\n".join(components) + "\n",
        env={**os.environ, "CLEARPORT_DATA_DIR": str(settings.data_dir), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert right.returncode == 0, right.stderr
    assert (keyring.parent / "master.key").exists()
    assert not any(c.split("-")[0] in right.stdout + right.stderr for c in components)
