"""Object storage in an S3 bucket (or anything that speaks S3: moto in the tests).

Objects live under `prefix` in `bucket`, encrypted server-side with a KMS key when one is
configured. Large files go up as multipart uploads streamed from disk by boto3's transfer
manager (bounded parts, never the whole file in memory). Every object carries its SHA-256 in its
metadata, so writing the same bytes again is one HEAD and no new object version. boto3 blocks,
so each call runs in a worker thread; timeouts are short and throttling is retried with
backoff ("standard" retry mode) before `StorageUnavailable` is raised.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from clearport.storage.domain import StorageUnavailable, object_key

T = TypeVar("T")

_SHA256 = "sha256"  # the metadata key (x-amz-meta-sha256)
_MiB = 1 << 20


class S3Storage:
    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        kms_key_id: str | None = None,
        multipart_threshold_bytes: int = 64 * _MiB,
        part_size_bytes: int = 16 * _MiB,
        scratch_dir: Path | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._client = client or boto3.client(
            "s3",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(
                connect_timeout=3,
                read_timeout=30,
                retries={"max_attempts": 5, "mode": "standard"},
            ),
        )
        self._encryption: dict[str, str] = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}
        )
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold_bytes,
            multipart_chunksize=part_size_bytes,
            max_concurrency=4,
            use_threads=True,
        )
        self._scratch = scratch_dir

    def _name(self, key: str) -> str:
        return self.prefix + object_key(key)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._name(key)}"

    async def put(self, key: str, data: bytes) -> str:
        name = self._name(key)
        digest = hashlib.sha256(data).hexdigest()

        def put() -> None:
            if self._stored_digest(name) == digest:
                return
            self._client.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=data,
                Metadata={_SHA256: digest},
                **self._encryption,
            )

        await _call("put", put)
        return self.uri(key)

    async def put_file(self, key: str, local_path: str) -> str:
        name = self._name(key)
        path = Path(local_path)

        def upload() -> None:
            digest = _file_sha256(path)
            if self._stored_digest(name) != digest:
                self._client.upload_file(
                    str(path),
                    self.bucket,
                    name,
                    ExtraArgs={"Metadata": {_SHA256: digest}, **self._encryption},
                    Config=self._transfer,
                )
            path.unlink()

        await _call("upload", upload)
        return self.uri(key)

    async def get(self, key: str) -> bytes | None:
        name = self._name(key)

        def get() -> bytes | None:
            try:
                out = self._client.get_object(Bucket=self.bucket, Key=name)
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    return None
                raise
            return bytes(out["Body"].read())

        return await _call("get", get)

    async def keys(self, prefix: str) -> list[str]:
        def walk() -> list[str]:
            found: list[str] = []
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                found.extend(item["Key"][len(self.prefix) :] for item in page.get("Contents", []))
            return sorted(found)

        return await _call("list", walk)

    async def create_bucket(self) -> bool:
        """Create the bucket unless it exists; True if created. For first set-up and moto;
        production creates it (versioned, encrypted, locked down) with its infrastructure."""

        def create() -> bool:
            try:
                self._client.head_bucket(Bucket=self.bucket)
                return False
            except ClientError as exc:
                if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
            region = self._client.meta.region_name
            where = (
                {}
                if region in (None, "us-east-1")
                else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            )
            self._client.create_bucket(Bucket=self.bucket, **where)
            return True

        return await _call("create bucket", create)

    def scratch_dir(self) -> str:
        import tempfile

        d = self._scratch or Path(tempfile.gettempdir()) / "clearport-scratch"
        d.mkdir(parents=True, exist_ok=True)
        return str(d)

    def _stored_digest(self, name: str) -> str | None:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        metadata: dict[str, str] = head.get("Metadata", {})
        return metadata.get(_SHA256)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown"))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_MiB):
            digest.update(chunk)
    return digest.hexdigest()


async def _call(what: str, call: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(call)
    except ClientError as exc:
        raise StorageUnavailable(f"S3 {what} refused: {_code(exc)}.") from exc
    except (BotoCoreError, OSError) as exc:
        # boto3's transfer manager wraps part failures in its own errors; all say "not stored".
        raise StorageUnavailable(f"S3 {what} failed: {type(exc).__name__}.") from exc
    except Exception as exc:
        if type(exc).__module__.startswith(("s3transfer", "boto3")):
            raise StorageUnavailable(f"S3 {what} failed: {type(exc).__name__}.") from exc
        raise


__all__ = ["S3Storage"]
