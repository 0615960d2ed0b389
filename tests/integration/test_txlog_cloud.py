"""Signed checkpoints with KMS `Sign`/`Verify` (ECC_NIST_P256), kept in the database and in S3,
and the DynamoDB mirror of the transaction log: all against moto's server over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from clearport.config import Settings
from clearport.http.app import create_app
from clearport.txlog.domain import Checkpoint, checkpoint_message
from clearport.txlog.dynamodb import MirrorUnavailable
from clearport.txlog.signatures import PublicKeyVerifier
from clearport.vault.domain import KeyMaterialUnavailable
from clearport.vault.kms import KmsCheckpointSigner
from clearport.wiring import Container, build_container, dynamodb_mirror_for
from tests.aws_support import REGION, client, new_bucket, new_kek_alias, new_signing_key
from tests.integration.test_payments_worker import new_payment
from tests.payments_support import merchant_principal, with_container
from tests.support import TEST_SERVER_SECRET, Api, ThreadedServer, free_port, pg

CLI = str(Path(sys.executable).parent / "clearport")


def cloud(moto_url: str, *, mirror: bool = True) -> dict[str, Any]:
    """Settings for KMS (KEK and signing key), S3 and DynamoDB, all on moto."""
    table = f"clearport-txlog-{os.urandom(3).hex()}" if mirror else None
    return {
        "key_provider": "aws-kms",
        "kms_key_id": new_kek_alias(moto_url),
        "kms_signing_key_id": new_signing_key(moto_url),
        "kms_region": REGION,
        "kms_endpoint_url": moto_url,
        "storage": "s3",
        "s3_bucket": new_bucket(moto_url),
        "s3_region": REGION,
        "s3_endpoint_url": moto_url,
        "dynamodb_table": table,
        "dynamodb_region": REGION,
        "dynamodb_endpoint_url": moto_url,
    }


def env_of(settings: dict[str, Any]) -> dict[str, str]:
    return {f"CLEARPORT_{k.upper()}": str(v) for k, v in settings.items() if v is not None}


def create_table(settings: Settings, overrides: dict[str, Any]) -> None:
    dynamodb_mirror_for(settings.model_copy(update=overrides)).create_table()


def tamper(database_url: str, *statements: str) -> None:
    with pg(database_url) as conn:
        conn.execute("SET session_replication_role = replica")  # past the append-only triggers
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


async def pay_and_seal(c: Container, merchant_id: str, n: int) -> None:
    for _ in range(n):
        await c.payments.create(merchant_principal(merchant_id), new_payment(), None)
    await c.chains.seal("txlog", 10_000, checkpoint_now=True)


# --- KMS Sign / Verify ---------------------------------------------------------------------


async def test_kms_signs_and_the_public_key_alone_verifies(moto_url: str) -> None:
    signer = KmsCheckpointSigner(new_signing_key(moto_url), region=REGION, endpoint_url=moto_url)
    head = bytes(range(32))
    signature = await signer.sign(checkpoint_message("txlog", 7, head))
    cp = Checkpoint("txlog", 7, head, signer.algorithm, await signer.key_id(), signature)
    verifier = PublicKeyVerifier(await signer.public_key_pem())
    assert verifier.check(cp) is None
    assert signer.algorithm == "ecdsa-p256-sha256"
    forged = Checkpoint("txlog", 7, head, cp.algorithm, cp.key_id, signature[:-1] + b"\0")
    assert verifier.check(forged) == "checkpoint at 7 has a bad signature"
    moved = Checkpoint("txlog", 8, head, cp.algorithm, cp.key_id, signature)
    assert verifier.check(moved) == "checkpoint at 8 has a bad signature"
    other = KmsCheckpointSigner(new_signing_key(moto_url), region=REGION, endpoint_url=moto_url)
    refused = PublicKeyVerifier(await other.public_key_pem()).check(cp)
    assert refused is not None and refused.startswith("checkpoint at 7 is signed by key sha256:")
    symmetric = client("kms", moto_url).create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(KeyMaterialUnavailable):
        await KmsCheckpointSigner(symmetric, region=REGION, endpoint_url=moto_url).key_id()


def test_kms_checkpoints_in_the_database_and_s3_and_tampering_them(
    api: Api, settings: Settings, database_url: str, tmp_path: Path, moto_url: str
) -> None:
    merchant_id, _ = api.merchant()
    aws = cloud(moto_url, mirror=False)

    async def seal(c: Container) -> str | None:
        await pay_and_seal(c, merchant_id, 2)
        assert await c.chains.copy_checkpoints("txlog", "test", 100) == 1
        return (await c.chains.verify("txlog")).reason

    reason = with_container(settings, database_url, tmp_path, seal, **aws)
    assert reason is None
    with pg(database_url) as conn:
        row = conn.execute("SELECT seq, algorithm FROM chain_checkpoints").fetchone()
    assert row == (4, "ecdsa-p256-sha256")
    key = f"txlog/checkpoints/txlog/{4:015d}.json"
    s3 = client("s3", moto_url)
    stored = s3.get_object(Bucket=aws["s3_bucket"], Key=key)["Body"].read()
    assert b'"algorithm": "ecdsa-p256-sha256"' in stored

    def verify_reason() -> str | None:
        async def work(c: Container) -> str | None:
            return (await c.chains.verify("txlog")).reason

        return with_container(settings, database_url, tmp_path, work, **aws)

    # A changed signature in the database is bad (and no longer what storage holds).
    tamper(database_url, "UPDATE chain_checkpoints SET signature = signature || '\\x00'::bytea")
    assert verify_reason() == "checkpoint at 4 has a bad signature"
    # The stored copy replaced by another key's signature of the same head: found too.
    tamper(database_url, "DELETE FROM chain_checkpoints")
    s3.put_object(Bucket=aws["s3_bucket"], Key=key, Body=stored.replace(b"sha256:", b"sha256:0"))
    assert "is signed by key sha256:0" in (verify_reason() or "")


# --- the DynamoDB mirror -------------------------------------------------------------------


def test_the_mirror_reports_a_gap_an_extra_row_and_a_changed_row(
    api: Api, settings: Settings, database_url: str, tmp_path: Path, moto_url: str
) -> None:
    merchant_id, _ = api.merchant()
    aws = cloud(moto_url)
    create_table(settings, aws)

    async def fill(c: Container) -> Any:
        await pay_and_seal(c, merchant_id, 3)  # 6 entries: each payment's pending, authorized
        mirror = c.mirror
        assert mirror is not None
        copied = await mirror.copy("test")
        assert copied is not None and copied.conflicts == []
        return copied.through, await mirror.compare(), await mirror.lag()

    through, report, lag = with_container(settings, database_url, tmp_path, fill, **aws)
    assert report.ok and report.compared == through == 6 and lag == (0, 0.0)
    table = aws["dynamodb_table"]
    dynamodb = client("dynamodb", moto_url)
    dynamodb.delete_item(TableName=table, Key={"shard": {"S": "txlog#03"}, "seq": {"N": "3"}})
    dynamodb.put_item(
        TableName=table,
        Item={"shard": {"S": "txlog#07"}, "seq": {"N": "999"}, "row": {"S": "{}"}},
    )
    five = dynamodb.get_item(TableName=table, Key={"shard": {"S": "txlog#05"}, "seq": {"N": "5"}})
    changed = five["Item"]
    changed["row"] = {"S": changed["row"]["S"].replace('"amount":1000', '"amount":1')}
    dynamodb.put_item(TableName=table, Item=changed)

    env = {
        **os.environ,
        **env_of(aws),
        "DATABASE_URL": database_url,
        "CLEARPORT_DATA_DIR": str(tmp_path),
        "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
    }
    out = subprocess.run(
        [CLI, "txlog", "verify", "--against", "dynamodb"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert "dynamodb: DIFFERS, 5 entries compared, mirrored through 6, 0 pending" in out.stdout
    assert "missing (1): 3" in out.stdout
    assert "extra (1): 999" in out.stdout
    assert "differing (1): 5 (row)" in out.stdout


def test_the_mirror_lags_while_dynamodb_is_down_then_catches_up_without_writing_twice(
    api: Api, settings: Settings, database_url: str, tmp_path: Path, moto_url: str
) -> None:
    merchant_id, _ = api.merchant()
    _, key = api.merchant()  # paid through the session's server (its own key provider)
    aws = cloud(moto_url)
    create_table(settings, aws)
    down = {**aws, "dynamodb_endpoint_url": f"http://127.0.0.1:{free_port()}"}

    async def outage(c: Container) -> tuple[int, float]:
        await pay_and_seal(c, merchant_id, 2)
        assert c.mirror is not None
        with pytest.raises(MirrorUnavailable):
            await c.mirror.copy("test")
        return await c.mirror.lag()

    behind, seconds = with_container(settings, database_url, tmp_path, outage, **down)
    assert behind == 4 and seconds > 0
    # Payments go on meanwhile (the mirror is not on their path).
    r = api.call("POST", "/v1/payments", key, idempotency_key=str(uuid.uuid4()), json={
        "amount": 500, "currency": "usd", "capture": True,
        "source": {"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030}},
    })  # fmt: skip
    assert r.status_code == 201, r.text

    async def recover(c: Container) -> tuple[int, int, int]:
        await c.chains.seal("txlog", 10_000)
        assert c.mirror is not None
        copied = await c.mirror.copy("test")
        assert copied is not None
        # Progress lost (or a second worker with stale progress): the same entries again are
        # conditional puts that find them equal, and write nothing.
        with pg(database_url) as conn:
            conn.execute("UPDATE chain_copies SET through = 0 WHERE target = 'dynamodb:txlog'")
        again = await c.mirror.copy("test")
        assert again is not None and again.conflicts == []
        report = await c.mirror.compare()
        assert report.ok, report
        return copied.through, (await c.mirror.lag())[0], report.compared

    through, behind_after, compared = with_container(
        settings, database_url, tmp_path, recover, **aws
    )
    assert through == compared == 6 and behind_after == 0
    items = client("dynamodb", moto_url).scan(TableName=aws["dynamodb_table"])["Items"]
    assert len(items) == 6


def test_metrics_show_the_mirror_lag(
    api: Api, settings: Settings, database_url: str, tmp_path: Path, moto_url: str
) -> None:
    merchant_id, _ = api.merchant()
    aws = cloud(moto_url)
    local = settings.model_copy(update={"data_dir": tmp_path, **aws})

    async def seal(c: Container) -> None:
        await pay_and_seal(c, merchant_id, 1)

    with_container(settings, database_url, tmp_path, seal, **aws)
    container = build_container(local, database_url)
    server = ThreadedServer(create_app(container))
    server.start()
    try:
        text = httpx.get(server.url + "/metrics", timeout=10).text
    finally:
        server.stop()
    assert "clearport_txlog_mirror_lag_entries 2.0" in text
    assert "clearport_txlog_mirror_lag_seconds" in text
