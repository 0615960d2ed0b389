"""`clearport txlog seal|verify|export` as a user runs them, including an exported file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support import TEST_SERVER_SECRET, Api

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).parent / "clearport")
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def test_seal_verify_export_and_a_tampered_file(api: Api, tmp_path: Path) -> None:
    _, key = api.merchant()
    for capture in (False, True, False):
        r = api.call(
            "POST",
            "/v1/payments",
            key,
            json={"amount": 500, "currency": "usd", "source": {"card": CARD}, "capture": capture},
            idempotency_key=str(uuid.uuid4()),
        )
        assert r.status_code == 201
    env = {
        **os.environ,
        "DATABASE_URL": api.database_url,
        "CLEARPORT_DATA_DIR": str(tmp_path),
        "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120)

    assert cli("txlog", "seal").returncode == 0
    ok = cli("txlog", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "txlog: OK, 6 entries" in ok.stdout
    export = tmp_path / "export.jsonl"
    exported = cli("txlog", "export", "--out", str(export))
    assert exported.returncode == 0, exported.stderr
    assert cli("txlog", "verify", "--file", str(export)).returncode == 0
    lines = export.read_text().splitlines()
    audit_rows = sum(json.loads(line)["chain"] == "audit" for line in lines)
    assert audit_rows > 0
    assert exported.stdout == f"Exported 6 txlog rows, {audit_rows} audit rows to {export}.\n"
    txlog_lines = [i for i, line in enumerate(lines) if json.loads(line)["chain"] == "txlog"]
    item = json.loads(lines[txlog_lines[3]])
    item["row"] = item["row"].replace('"amount":500', '"amount":50000')
    lines[txlog_lines[3]] = json.dumps(item)
    export.write_text("\n".join(lines) + "\n")
    bad = cli("txlog", "verify", "--chain", "txlog", "--file", str(export))
    assert bad.returncode == 1
    assert "first bad sequence number 4" in bad.stdout
