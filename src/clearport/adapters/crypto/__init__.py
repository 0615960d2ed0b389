"""Key providers (local keyring, AWS KMS), AES-256-GCM record encryption and the DEK cache."""

from __future__ import annotations

from pathlib import Path

from clearport.adapters.crypto.envelope import AesGcmCipher, TtlDekCache
from clearport.adapters.crypto.kms import AwsKmsKeyProvider
from clearport.adapters.crypto.local import LocalKeyProvider
from clearport.app.ports import KeyProvider

__all__ = [
    "AesGcmCipher",
    "AwsKmsKeyProvider",
    "LocalKeyProvider",
    "TtlDekCache",
    "build_key_provider",
]


def build_key_provider(
    kind: str,
    *,
    keyring_path: Path,
    pgdata_dir: Path,
    master_key_hex: str | None,
    kms_key_id: str | None,
    kms_region: str | None,
    kms_endpoint_url: str | None,
) -> KeyProvider:
    keyring = keyring_path.resolve()
    if keyring.is_relative_to(pgdata_dir.resolve()):
        raise ValueError("The keyring must not live inside the database directory.")
    if kind == "local":
        master = bytes.fromhex(master_key_hex) if master_key_hex else None
        if master is not None and len(master) != 32:
            raise ValueError("CLEARPORT_MASTER_KEY must be 64 hex digits (256 bits).")
        return LocalKeyProvider(keyring_path, master_key=master)
    if kind == "aws-kms":
        if not kms_key_id:
            raise ValueError("CLEARPORT_KMS_KEY_ID is required with the aws-kms key provider.")
        return AwsKmsKeyProvider(
            kms_key_id,
            region=kms_region,
            keyring_path=keyring_path,
            endpoint_url=kms_endpoint_url,
        )
    raise ValueError(f"unknown key provider {kind!r}")
