"""`clearport payouts mark po_… paid|failed` as the README writes it, and `--status` as older
scripts do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clearport.config import Settings
from tests.integration.test_payments_api import pay
from tests.integration.test_settlement_api import US_BANK, wait_run
from tests.support import TEST_SERVER_SECRET, Api

pytestmark = pytest.mark.slow


def _cli(api: Api, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": api.database_url,
        "CLEARPORT_DATA_DIR": str(data_dir),
        "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
        "CLEARPORT_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",  # usage errors in one line each
    }
    return subprocess.run(
        [sys.executable, "-m", "clearport.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _payouts_in_transit(api: Api, settings: Settings, count: int) -> list[str]:
    admin = api.operator("admin")
    for _ in range(count):
        merchant, key = api.merchant(admin, payout_delay_days=0)
        put = api.call("PUT", f"/v1/merchants/{merchant}/bank_account", admin, json=US_BANK)
        assert put.status_code == 200, put.text
        pay(api, key, amount=5_000, capture=True)
    time.sleep(1.1)  # the cutoff (whole seconds) must be after the captures
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    body = {"business_date": yesterday, "cutoff": int(time.time())}
    started = api.call("POST", "/v1/settlement_runs", admin, json=body)
    assert started.status_code == 201, started.text
    assert wait_run(api, admin, started.json()["id"], settings)["status"] == "completed"
    payouts = api.call("GET", "/v1/payouts", admin).json()["data"]
    assert [p["status"] for p in payouts] == ["in_transit"] * count
    return [p["id"] for p in payouts]


def _status(api: Api, payout_id: str) -> str:
    r = api.call("GET", f"/v1/payouts/{payout_id}", api.operator("finance"))
    return str(r.json()["status"])


def test_payouts_mark_takes_the_outcome_as_an_argument_or_an_option(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    positional, optional = _payouts_in_transit(api, settings, 2)

    for args, message in (
        ([positional], "missing: `clearport payouts mark po_… paid|failed`"),
        ([positional, "paid", "--status", "failed"], "not both"),
        ([positional, "sent"], "'sent' is not one of"),
    ):
        refused = _cli(api, tmp_path, "payouts", "mark", *args)
        assert refused.returncode == 2, refused.stderr
        assert message in refused.stderr
    assert _status(api, positional) == "in_transit"

    paid = _cli(api, tmp_path, "payouts", "mark", positional, "paid")
    assert paid.returncode == 0, paid.stderr
    assert '"status": "paid"' in paid.stdout
    assert _status(api, positional) == "paid"

    failed = _cli(
        api, tmp_path, "payouts", "mark", optional, "--status", "failed", "--failure-code", "R01"
    )
    assert failed.returncode == 0, failed.stderr
    assert '"failure_code": "R01"' in failed.stdout
    assert _status(api, optional) == "failed"

    helped = _cli(api, tmp_path, "payouts", "mark", "--help")
    assert helped.returncode == 0
    assert "clearport payouts mark po_… paid" in helped.stdout
