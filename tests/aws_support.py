"""moto's server over HTTP, standing in for KMS, S3 and DynamoDB exactly as boto3 talks to AWS:
one per test session (`moto_url` in tests/conftest.py), and clients for it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx

from tests.support import free_port

REGION = "us-east-1"


@contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    binary = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client(service: str, moto_url: str) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def new_bucket(moto_url: str) -> str:
    name = f"clearport-{os.urandom(4).hex()}"
    client("s3", moto_url).create_bucket(Bucket=name)
    return name


def new_signing_key(moto_url: str) -> str:
    """An ECC_NIST_P256 SIGN_VERIFY key, as CLEARPORT_KMS_SIGNING_KEY_ID names it."""
    created = client("kms", moto_url).create_key(
        KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description="clearport checkpoints"
    )
    return str(created["KeyMetadata"]["KeyId"])


def new_kek_alias(moto_url: str) -> str:
    kms = client("kms", moto_url)
    key_id = kms.create_key(Description="clearport KEK")["KeyMetadata"]["KeyId"]
    alias = f"alias/clearport-{os.urandom(4).hex()}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return alias


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
