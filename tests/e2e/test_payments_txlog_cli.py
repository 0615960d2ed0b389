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


def _pay(api: Api, key: str, n: int) -> None:
    for i in range(n):
        r = api.call(
            "POST",
            "/v1/payments",
            key,
            json={
                "amount": 500,
                "currency": "usd",
                "source": {"card": CARD},
                "capture": i % 2 == 1,
            },
            idempotency_key=str(uuid.uuid4()),
        )
        assert r.status_code == 201


def test_seal_verify_export_and_a_tampered_file(api: Api, tmp_path: Path) -> None:
    _, key = api.merchant()
    _pay(api, key, 3)
    env = {
        **os.environ,
        "DATABASE_URL": api.database_url,
        "CLEARPORT_DATA_DIR": str(tmp_path),
        "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
    }

    def cli(*args: str, environ: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, *args], env=environ, capture_output=True, text=True, timeout=120
        )

    assert cli("txlog", "seal").returncode == 0
    ok = cli("txlog", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "txlog: OK, 6 entries, 1 checkpoints" in ok.stdout
    export = tmp_path / "export.jsonl"
    exported = cli("txlog", "export", "--out", str(export))
    assert exported.returncode == 0, exported.stderr
    lines = export.read_text().splitlines()
    audit_rows = sum(json.loads(line)["chain"] == "audit" and "row" in line for line in lines)
    assert audit_rows > 0
    stored = tmp_path / "objects" / "txlog" / "exports" / f"txlog-6-audit-{audit_rows}.jsonl"
    assert exported.stdout.replace("\n", "") == (
        f"Exported 6 txlog rows, {audit_rows} audit rows to {export} and {stored.as_uri()}."
    )
    assert stored.read_bytes() == export.read_bytes()

    # Newer entries, sealed with a newer checkpoint: the live chain shows them; the export,
    # taken before, still verifies against the checkpoints it carries (it used to say
    # "TAMPERED: checkpoint at 10 but the chain ends at 6"). Entries not sealed yet are
    # "unsealed", never tampering.
    _pay(api, key, 2)
    assert cli("txlog", "seal").returncode == 0
    _pay(api, key, 1)
    live = cli("txlog", "verify", "--chain", "txlog")
    assert live.stdout == (
        "txlog: OK, 10 entries, 2 checkpoints, 2 unsealed (newer than the last seal)\n"
    ), live.stdout + live.stderr
    assert cli("txlog", "verify", "--file", str(export)).returncode == 0

    # Offline: only the public key, no database and no keyring.
    public_key = tmp_path / "checkpoints.pem"
    assert cli("txlog", "public-key", "--out", str(public_key)).returncode == 0
    assert public_key.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    offline_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    offline_env["CLEARPORT_DATA_DIR"] = str(elsewhere)
    offline = cli(
        "txlog", "verify", "--chain", "txlog", "--file", str(export),
        "--public-key", str(public_key), environ=offline_env,
    )  # fmt: skip
    assert offline.stdout == "txlog: OK, 6 entries, 1 checkpoints\n", offline.stderr
    assert list(elsewhere.iterdir()) == []  # nothing started, nothing created

    # A checkpoint signed by another key, then a row changed: each named, exit code 1.
    other_key = tmp_path / "other.pem"
    other_env = {**env, "CLEARPORT_DATA_DIR": str(tmp_path / "other")}
    assert cli("txlog", "public-key", "--out", str(other_key), environ=other_env).returncode == 0
    foreign = cli("txlog", "verify", "--chain", "txlog", "--file", str(export),
                  "--public-key", str(other_key), environ=offline_env)  # fmt: skip
    assert foreign.returncode == 1
    assert "TAMPERED, first bad sequence number 1: checkpoint at 6 is signed by key" in (
        foreign.stdout.replace("\n", "")
    )
    txlog_lines = [i for i, line in enumerate(lines) if json.loads(line)["chain"] == "txlog"]
    item = json.loads(lines[txlog_lines[3]])
    item["row"] = item["row"].replace('"amount":500', '"amount":50000')
    lines[txlog_lines[3]] = json.dumps(item)
    export.write_text("\n".join(lines) + "\n")
    bad = cli("txlog", "verify", "--chain", "txlog", "--file", str(export))
    assert bad.returncode == 1
    assert "first bad sequence number 4" in bad.stdout
