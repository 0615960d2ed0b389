"""`clearport simulate money`: one seed from the command line, its last line the count."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import TEST_SERVER_SECRET

pytestmark = pytest.mark.slow


def test_a_seed_runs_and_says_how_many_violations(database_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CLEARPORT_DATA_DIR": str(tmp_path),
        "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "clearport.cli",
            "simulate",
            "money",
            "--seed",
            "18",
            "--steps",
            "19",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "0 violations", done.stdout + done.stderr
    assert done.returncode == 0
    assert lines[-2].startswith("seed 18: 19 steps; faults: ")
    assert "process.crash" in lines[-2]  # seed 18 crashes the process twice by step 19
