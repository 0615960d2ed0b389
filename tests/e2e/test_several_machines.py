"""Several machines on one database: two API processes and two workers, each with a data
directory of its own, sharing only configuration (the server secret, KMS, S3 and DynamoDB, all
on moto). A settlement run asked of one API is settled by the workers and read from the other;
the transaction log is sealed, signed by KMS, copied to S3 and mirrored to DynamoDB; every
machine's verify agrees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.aws_support import REGION, client
from tests.support import TEST_SERVER_SECRET, Api, free_port, pg

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).parent / "clearport")
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
US_BANK = {"country": "US", "currency": "usd", "account_holder": "Two Machines LLC",
           "routing_number": "110000000", "account_number": "000123456789"}  # fmt: skip


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 90) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} after {timeout_s} s")


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen([CLI, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def scalar(database_url: str, query: str) -> Any:
    with pg(database_url) as conn:
        row = conn.execute(query).fetchone()  # type: ignore[arg-type]
    return None if row is None else row[0]


def test_two_apis_and_two_workers_on_one_database(api: Api, moto_url: str, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    bucket = f"clearport-{suffix}"
    table = f"clearport-txlog-{suffix}"
    shared = {
        **os.environ,
        "DATABASE_URL": api.database_url,
        "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
        "CLEARPORT_LOG_LEVEL": "INFO",
        "CLEARPORT_WORKER_INTERVAL_S": "0.2",
        "CLEARPORT_CHECKPOINT_INTERVAL_S": "0",
        "CLEARPORT_KEY_PROVIDER": "aws-kms",
        "CLEARPORT_KMS_KEY_ID": f"alias/kek-{suffix}",
        "CLEARPORT_KMS_SIGNING_KEY_ID": f"alias/checkpoints-{suffix}",
        "CLEARPORT_KMS_REGION": REGION,
        "CLEARPORT_KMS_ENDPOINT_URL": moto_url,
        "CLEARPORT_STORAGE": "s3",
        "CLEARPORT_S3_BUCKET": bucket,
        "CLEARPORT_S3_PREFIX": "prod",
        "CLEARPORT_S3_REGION": REGION,
        "CLEARPORT_S3_ENDPOINT_URL": moto_url,
        "CLEARPORT_DYNAMODB_TABLE": table,
        "CLEARPORT_DYNAMODB_REGION": REGION,
        "CLEARPORT_DYNAMODB_ENDPOINT_URL": moto_url,
    }
    machines = {}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        machines[name] = {**shared, "CLEARPORT_DATA_DIR": str(tmp_path / name)}

    def cli(machine: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, *args], env=machines[machine], capture_output=True, text=True, timeout=120
        )

    boot = cli("a", "cloud", "bootstrap")
    assert boot.returncode == 0, boot.stdout + boot.stderr
    for created in (f"S3 bucket {bucket}", f"DynamoDB table {table}", f"alias/kek-{suffix}"):
        assert created in boot.stdout.replace("\n", "")
    assert "Nothing to create." in cli("b", "cloud", "bootstrap").stdout

    ports = {"a": free_port(), "b": free_port()}
    with ExitStack() as stack:
        apis = {}
        for name in ("a", "b"):
            apis[name] = stack.enter_context(process(
                ["serve", "--port", str(ports[name])], machines[name], tmp_path / f"api-{name}.log"
            ))  # fmt: skip
            stack.enter_context(
                process(["worker"], machines[name], tmp_path / f"worker-{name}.log")
            )
        urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
        http = stack.enter_context(httpx.Client(timeout=30))
        for name, url in urls.items():
            ready = partial(_ready, http, url, apis[name], tmp_path / f"api-{name}.log")
            wait_for(f"{url}/readyz", ready)

        admin = api.operator("admin")

        def call(machine: str, method: str, path: str, key: str, **kwargs: Any) -> Any:
            headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())}
            r = http.request(method, urls[machine] + path, headers=headers, **kwargs)
            assert r.status_code in (200, 201), r.text
            return r.json()

        merchant = call("a", "POST", "/v1/merchants", admin, json={
            "name": "Two Machines", "country": "US", "mcc": "5999", "default_currency": "usd",
            "payout_delay_days": 0,
        })["id"]  # fmt: skip
        key = call("b", "POST", f"/v1/merchants/{merchant}/keys", admin, json={})["secret"]
        call("a", "PUT", f"/v1/merchants/{merchant}/bank_account", admin, json=US_BANK)
        # The fingerprint key is KMS-wrapped in the database: both machines agree on it.
        fingerprints = {
            call(m, "POST", "/v1/tokens", key, json={"card": {k: CARD[k] for k in
                 ("number", "exp_month", "exp_year")}})["card"]["fingerprint"]
            for m in ("a", "b")
        }  # fmt: skip
        assert len(fingerprints) == 1
        paid = [
            call(
                "ab"[i % 2],
                "POST",
                "/v1/payments",
                key,
                json={
                    "amount": 1_000 + i,
                    "currency": "usd",
                    "capture": True,
                    "source": {"card": CARD},
                },
            )
            for i in range(6)
        ]
        assert {p["status"] for p in paid} == {"captured"}
        time.sleep(1.1)  # the cutoff (whole seconds) after the captures

        # Settlement: asked of machine b, settled by the workers, read on machine a.
        today = datetime.now(UTC).date().isoformat()
        run = call("b", "POST", "/v1/settlement_runs", admin,
                   json={"business_date": today, "cutoff": int(time.time())})  # fmt: skip
        assert run["status"] == "running"
        done = wait_for("the run", lambda: _completed(http, urls["a"], admin, run["id"]))
        assert done["stats"]["payout_files"][0]["count"] == 1
        (settlement,) = call("a", "GET", "/v1/settlements", key)["data"]
        assert settlement["count"] == 6 and settlement["run"] == run["id"]
        (payout,) = call("b", "GET", "/v1/payouts", key)["data"]
        assert payout["status"] == "in_transit" and payout["amount"] == settlement["payout"]

        # The seal, its KMS-signed checkpoints and their copies, and the DynamoDB mirror.
        entries = scalar(api.database_url, "SELECT count(*) FROM txlog")
        wait_for("the seal", lambda: scalar(
            api.database_url, "SELECT count(*) FROM chain_seals WHERE chain = 'txlog'"
        ) == entries)  # fmt: skip
        wait_for("the mirror", lambda: scalar(
            api.database_url, "SELECT through FROM chain_copies WHERE target = 'dynamodb:txlog'"
        ) == entries)  # fmt: skip
        wait_for("checkpoint copies", lambda: scalar(
            api.database_url,
            "SELECT through FROM chain_copies WHERE target = 'storage:txlog-checkpoints'",
        ) == entries)  # fmt: skip
        assert scalar(api.database_url, "SELECT DISTINCT algorithm FROM chain_checkpoints") == (
            "ecdsa-p256-sha256"
        )
        for name in ("a", "b"):
            assert (tmp_path / name / "worker.alive").exists()

    # Every object in S3, under the prefix; the payout file as recorded.
    keys = [o["Key"] for o in client("s3", moto_url).list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.startswith(f"prod/settlements/{today}/{run['id']}/") for k in keys)
    assert any(k.startswith(f"prod/payouts/{today}/") for k in keys)
    assert any(k.startswith("prod/txlog/checkpoints/txlog/") for k in keys)
    with pg(api.database_url) as conn:
        uri, stored = conn.execute("SELECT uri, stored_at FROM payout_files").fetchone()  # type: ignore[misc]
    assert uri.startswith(f"s3://{bucket}/prod/payouts/") and stored is not None

    # Each machine verifies the other's work; the public key alone is enough.
    public_key = tmp_path / "checkpoints.pem"
    assert cli("a", "txlog", "public-key", "--out", str(public_key)).returncode == 0
    verified = cli("b", "txlog", "verify", "--public-key", str(public_key))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"txlog: OK, {entries} entries" in verified.stdout
    mirrored = cli("a", "txlog", "verify", "--against", "dynamodb")
    assert mirrored.returncode == 0, mirrored.stdout + mirrored.stderr
    assert f"dynamodb: OK, {entries} entries compared" in mirrored.stdout

    # Both workers took part in the work queue; each partition was settled once.
    partitions = {
        name: _logged(tmp_path / f"worker-{name}.log", "settlement_partition")
        for name in ("a", "b")
    }
    assert sum(partitions.values()) == 8, partitions


def _ready(http: httpx.Client, url: str, api: subprocess.Popen[bytes], log: Path) -> bool:
    """Whether the API answers ready; an API that exited fails the test at once, with its log
    (it was a 90 s time-out that said nothing)."""
    if api.poll() is not None:
        raise AssertionError(f"the API exited ({api.returncode}):\n{log.read_text()[-3000:]}")
    try:
        return http.get(url + "/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def _completed(http: httpx.Client, url: str, key: str, run_id: str) -> dict[str, Any] | None:
    r = http.get(f"{url}/v1/settlement_runs/{run_id}", headers={"Authorization": f"Bearer {key}"})
    body = r.json()
    assert body["status"] != "failed", body
    return body if body["status"] == "completed" else None


def _logged(log: Path, event: str) -> int:
    count = 0
    for line in log.read_text().splitlines():
        try:
            count += json.loads(line).get("event") == event
        except ValueError:
            continue
    return count
