"""Object storage in S3 (moto's server over HTTP): upload, overwrite, multipart, encryption, an
unreachable S3; and settlement writing its reports and payout files there end to end, failing
cleanly when S3 does and resuming."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from clearport.access.domain import SYSTEM_CLI as SYSTEM
from clearport.core.errors import InvalidRequest
from clearport.storage.domain import StorageUnavailable
from clearport.storage.ports import ObjectStorage
from clearport.storage.s3 import S3Storage
from tests.aws_support import REGION, client, new_bucket
from tests.integration import test_settlement_run
from tests.integration.test_settlement_run import (
    BLENDED,
    ORIGIN,
    US_BANK,
    YESTERDAY,
    Env,
    add_merchant,
    capture,
    db_now,
    make_service,
    q,
    run,
)
from tests.support import free_port

MiB = 1 << 20
env = test_settlement_run.env  # the fixture: a settlement service over the test database


def s3_storage(moto_url: str, bucket: str, **options: Any) -> S3Storage:
    return S3Storage(bucket, region=REGION, endpoint_url=moto_url, **options)


def unreachable_s3() -> S3Storage:
    """Nothing listens on the port: every call fails at once (one attempt, no retries)."""
    dead = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(connect_timeout=1, retries={"max_attempts": 1, "mode": "standard"}),
    )
    return S3Storage("nowhere", client=dead)


async def test_upload_overwrite_get_list_and_uri(moto_url: str) -> None:
    bucket = new_bucket(moto_url)
    s3 = client("s3", moto_url)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    storage = s3_storage(moto_url, bucket, prefix="/prod/")
    uri = await storage.put("settlements/2026-12-01/a.csv", b"one")
    assert uri == f"s3://{bucket}/prod/settlements/2026-12-01/a.csv"
    assert await storage.get("settlements/2026-12-01/a.csv") == b"one"
    # The same bytes again: no new object version. Other bytes: overwritten.
    await storage.put("settlements/2026-12-01/a.csv", b"one")
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert len(versions) == 1
    await storage.put("settlements/2026-12-01/a.csv", b"two")
    assert await storage.get("settlements/2026-12-01/a.csv") == b"two"
    assert len(s3.list_object_versions(Bucket=bucket)["Versions"]) == 2
    await storage.put("settlements/2026-12-02/b.csv", b"x")
    assert await storage.keys("settlements/") == [
        "settlements/2026-12-01/a.csv",
        "settlements/2026-12-02/b.csv",
    ]
    assert await storage.get("settlements/missing.csv") is None
    for bad in ("../escape", "/abs", "a//b"):
        with pytest.raises(InvalidRequest):
            await storage.put(bad, b"x")


async def test_a_large_file_goes_up_in_parts_streamed_and_encrypted(
    moto_url: str, tmp_path: Path
) -> None:
    bucket = new_bucket(moto_url)
    kms_key = client("kms", moto_url).create_key()["KeyMetadata"]["KeyId"]
    storage = s3_storage(
        moto_url,
        bucket,
        kms_key_id=kms_key,
        multipart_threshold_bytes=5 * MiB,
        part_size_bytes=5 * MiB,
    )
    path = tmp_path / "items.csv"
    with path.open("wb") as handle:
        for _ in range(12):
            handle.write(os.urandom(MiB))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    await storage.put_file("reports/items.csv", str(path))
    assert not path.exists()  # consumed, as the local adapter's rename consumes it
    head = client("s3", moto_url).head_object(Bucket=bucket, Key="reports/items.csv")
    assert head["ContentLength"] == 12 * MiB
    assert head["ETag"].strip('"').endswith("-3")  # three parts of at most 5 MiB
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["Metadata"]["sha256"] == digest
    data = await storage.get("reports/items.csv")
    assert data is not None and hashlib.sha256(data).hexdigest() == digest


async def test_unreachable_s3_raises_storage_unavailable(tmp_path: Path) -> None:
    storage = unreachable_s3()
    with pytest.raises(StorageUnavailable):
        await storage.put("a.txt", b"x")
    local = tmp_path / "f"
    local.write_bytes(b"y")
    with pytest.raises(StorageUnavailable):
        await storage.put_file("f.txt", str(local))
    assert local.exists()  # not consumed: a retry has it still
    with pytest.raises(StorageUnavailable):
        await storage.keys("")


# --- settlement into S3 --------------------------------------------------------------------


class FailingPayoutFiles:
    """Our storage port, failing for payout files only (the reports went through)."""

    def __init__(self, inner: ObjectStorage) -> None:
        self._inner = inner

    def uri(self, key: str) -> str:
        return self._inner.uri(key)

    async def put(self, key: str, data: bytes) -> str:
        if key.startswith("payouts/"):
            raise StorageUnavailable("S3 put failed: EndpointConnectionError.")
        return await self._inner.put(key, data)

    async def put_file(self, key: str, local_path: str) -> str:
        return await self._inner.put_file(key, local_path)

    async def get(self, key: str) -> bytes | None:
        return await self._inner.get(key)

    async def keys(self, prefix: str) -> list[str]:
        return await self._inner.keys(prefix)

    def scratch_dir(self) -> str:
        return self._inner.scratch_dir()


def test_settlement_writes_reports_and_payout_files_to_s3(env: Env, moto_url: str) -> None:
    bucket = new_bucket(moto_url)
    storage = s3_storage(moto_url, bucket, prefix="clearport")
    service = make_service(env.db, env.files, env.destinations, storage=storage)

    async def scenario() -> tuple[str, str]:
        merchants = [
            await add_merchant(env, country="US", currency="usd", pricing=BLENDED) for _ in range(3)
        ]
        for i, m in enumerate(merchants):
            env.destinations.accounts[m] = US_BANK
            await capture(env, m, 10_000 + i, "usd", "visa")
        cutoff = await db_now(env)
        first = await service.settle(SYSTEM, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        again = await service.settle(SYSTEM, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        assert first.status == again.status == "completed"
        return first.id, str(first.stats["payout_files"][0]["sha256"])

    run_id, payout_sha = run(scenario())
    names = sorted(
        o["Key"] for o in client("s3", moto_url).list_objects_v2(Bucket=bucket)["Contents"]
    )
    reports = [n for n in names if n.startswith(f"clearport/settlements/{YESTERDAY}/{run_id}/")]
    assert {n.rsplit("/", 1)[1] for n in reports} == {"items.csv", "items.parquet", "summary.json"}
    (payout_file,) = [n for n in names if n.startswith(f"clearport/payouts/{YESTERDAY}/")]
    body = client("s3", moto_url).get_object(Bucket=bucket, Key=payout_file)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == payout_sha
    uris = q(env.url, "SELECT uri, stored_at IS NOT NULL FROM payout_files")
    assert uris == [(f"s3://{bucket}/{payout_file}", True)]
    report_uris = q(env.url, "SELECT report->>'csv' FROM settlements")
    assert report_uris and all(u.startswith(f"s3://{bucket}/clearport/") for (u,) in report_uris)


def test_s3_down_fails_the_run_cleanly_and_it_resumes(env: Env, moto_url: str) -> None:
    bucket = new_bucket(moto_url)
    good = s3_storage(moto_url, bucket)
    down = make_service(env.db, env.files, env.destinations, storage=unreachable_s3())
    payouts_down = make_service(
        env.db, env.files, env.destinations, storage=FailingPayoutFiles(good)
    )
    up = make_service(env.db, env.files, env.destinations, storage=good)

    async def scenario() -> None:
        m = await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
        env.destinations.accounts[m] = US_BANK
        await capture(env, m, 25_000, "usd", "visa")
        cutoff = await db_now(env)
        # S3 unreachable: partitions settle (their transactions commit), reports cannot be
        # written, the run stays open.
        with pytest.raises(StorageUnavailable):
            await down.settle(SYSTEM, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        assert q(env.url, "SELECT status FROM settlement_runs") == [("running",)]
        # Reports go through, the payout file does not: recorded, its money in transit, the
        # file not stored.
        with pytest.raises(StorageUnavailable):
            await payouts_down.settle(SYSTEM, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        assert q(env.url, "SELECT stored_at IS NULL FROM payout_files") == [(True,)]
        assert q(env.url, "SELECT status FROM settlement_runs") == [("running",)]
        # S3 back: the same command resumes; the file is rendered again, checked against the
        # recorded digest and stored.
        done = await up.settle(SYSTEM, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        assert done.status == "completed"

    run(scenario())
    ((key, sha, stored),) = q(env.url, "SELECT object_key, sha256, stored_at FROM payout_files")
    assert stored is not None
    body = client("s3", moto_url).get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha
    assert q(env.url, "SELECT count(*) FROM payouts WHERE status = 'in_transit'") == [(1,)]
    assert q(env.url, "SELECT count(*) FROM settlement_items") == [(1,)]
