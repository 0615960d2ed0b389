"""The AWS KMS key provider: DEKs are generated and unwrapped by KMS, never by us.

`GenerateDataKey` / `Encrypt` / `Decrypt` with an `EncryptionContext` (merchant, DEK version), so
a wrapped DEK presented for another merchant is refused by KMS itself. The KEK is the KMS key
named by CLEARPORT_KMS_KEY_ID (key id, ARN or alias); its resolved ARN is the `kek_id` stored
beside each DEK. KMS rotates key material on its own; *our* KEK rotation is pointing the alias
(or setting) at a new key and running `clearport keys rotate-kek`, which re-wraps every DEK under
it. Retiring the old key (scheduling its deletion) stays an AWS-side decision.

The fingerprint HMAC key is a data key too: generated once, kept only KMS-wrapped in the
database (`vault_wrapped_keys`, so every machine has the same one), unwrapped at start. boto3
is blocking, so calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from clearport.core.errors import present
from clearport.txlog.signatures import ECDSA_P256, key_id_of, load_public_key, public_pem
from clearport.vault.domain import KeyMaterialUnavailable
from clearport.vault.ports import WrappedKeys

_FINGERPRINT_CONTEXT = {"purpose": "clearport-fingerprint"}
_FINGERPRINT_NAME = "fingerprint"
_ARN_TTL_S = 60.0


def _kms_client(region: str | None, endpoint_url: str | None) -> Any:
    return boto3.client(
        "kms",
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(
            connect_timeout=3, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}
        ),
    )


async def _kms_call(client: Any, method: str, **kwargs: Any) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        return dict(getattr(client, method)(**kwargs))

    try:
        return await asyncio.to_thread(run)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "unknown")
        raise KeyMaterialUnavailable(f"KMS {method} refused: {code}.") from exc
    except BotoCoreError as exc:
        raise KeyMaterialUnavailable(f"KMS {method} failed: {type(exc).__name__}.") from exc


class AwsKmsKeyProvider:
    name = "aws-kms"

    def __init__(
        self,
        key_id: str,
        *,
        region: str | None,
        keyring_path: Path,
        endpoint_url: str | None = None,
        client: Any = None,
        shared: WrappedKeys | None = None,
    ) -> None:
        self._key_id = key_id
        self._keyring_path = keyring_path
        self._shared = shared
        self._client = client or _kms_client(region, endpoint_url)
        self._arn: str | None = None
        self._arn_at = 0.0
        self._fp_key: bytes | None = None

    def set_key_id(self, key_id: str) -> None:
        """Point at another KMS key (tests; a deployment changes the setting instead)."""
        self._key_id = key_id
        self._arn = None

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        return await _kms_call(self._client, method, **kwargs)

    async def current_kek_id(self) -> str:
        if self._arn is None or time.monotonic() - self._arn_at > _ARN_TTL_S:
            described = await self._call("describe_key", KeyId=self._key_id)
            self._arn = str(described["KeyMetadata"]["Arn"])
            self._arn_at = time.monotonic()
        return self._arn

    async def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes, str]:
        out = await self._call(
            "generate_data_key",
            KeyId=await self.current_kek_id(),
            KeySpec="AES_256",
            EncryptionContext=dict(context),
        )
        return bytes(out["Plaintext"]), bytes(out["CiphertextBlob"]), str(out["KeyId"])

    async def wrap(self, plaintext: bytes, context: Mapping[str, str]) -> tuple[bytes, str]:
        out = await self._call(
            "encrypt",
            KeyId=await self.current_kek_id(),
            Plaintext=plaintext,
            EncryptionContext=dict(context),
        )
        return bytes(out["CiphertextBlob"]), str(out["KeyId"])

    async def unwrap(self, wrapped: bytes, kek_id: str, context: Mapping[str, str]) -> bytes:
        out = await self._call(
            "decrypt", CiphertextBlob=wrapped, KeyId=kek_id, EncryptionContext=dict(context)
        )
        return bytes(out["Plaintext"])

    async def rotate_kek(self) -> str:
        self._arn = None
        return await self.current_kek_id()

    async def retire_kek(self, kek_id: str) -> bool:
        return False  # deleting a KMS key is an AWS-side decision with a waiting period

    async def kek_ids(self) -> list[str]:
        return [await self.current_kek_id()]

    async def fingerprint_key(self) -> bytes:
        """The fingerprint key, KMS-wrapped in the database (`shared`) so that every machine
        unwraps the same one; a key kept in an older keyring file is moved there as it is."""
        if self._fp_key is not None:
            return self._fp_key
        if self._shared is not None:
            found = await self._shared.get(_FINGERPRINT_NAME)
            if found is None:
                wrapped, kek_id = await self._file_key() or await self._new_key()
                found = await self._shared.put_if_absent(
                    _FINGERPRINT_NAME, self.name, kek_id, wrapped
                )
            wrapped, kek_id = found
        else:
            wrapped, kek_id = await self._file_key() or await self._new_file_key()
        self._fp_key = await self.unwrap(wrapped, kek_id, _FINGERPRINT_CONTEXT)
        return self._fp_key

    async def _new_key(self) -> tuple[bytes, str]:
        _, wrapped, kek_id = await self.generate_data_key(_FINGERPRINT_CONTEXT)
        return wrapped, kek_id

    async def _file_key(self) -> tuple[bytes, str] | None:
        if not self._keyring_path.exists():
            return None
        doc = json.loads(self._keyring_path.read_text())
        return base64.b64decode(doc["fingerprint_key"]), str(doc["kek_id"])

    async def _new_file_key(self) -> tuple[bytes, str]:
        """One machine without a database at hand (a CLI key command): the keyring file."""
        wrapped, kek_id = await self._new_key()
        path = self._keyring_path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        doc = {
            "format": "clearport-kms-keyring/1",
            "fingerprint_key": base64.b64encode(wrapped).decode(),
            "kek_id": kek_id,
        }
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return present(await self._file_key(), "another process wrote the keyring")
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(doc))
        return wrapped, kek_id


async def ensure_kms_alias(
    alias: str, *, signing: bool, region: str | None, endpoint_url: str | None
) -> bool:
    """Create a KMS key behind `alias/...` unless the alias exists: a symmetric key for the KEK,
    or an ECC_NIST_P256 SIGN_VERIFY key for checkpoints. True if created. For first set-up
    and moto; a key id or ARN (not an alias) is never created."""
    if not alias.startswith("alias/"):
        return False
    client = _kms_client(region, endpoint_url)
    try:
        await _kms_call(client, "describe_key", KeyId=alias)
        return False
    except KeyMaterialUnavailable as exc:
        if not isinstance(exc.__cause__, ClientError) or (
            exc.__cause__.response.get("Error", {}).get("Code") != "NotFoundException"
        ):
            raise
    spec = (
        {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}
        if signing
        else {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"}
    )
    created = await _kms_call(client, "create_key", Description=f"clearport {alias}", **spec)
    await _kms_call(
        client, "create_alias", AliasName=alias, TargetKeyId=created["KeyMetadata"]["KeyId"]
    )
    return True


class KmsCheckpointSigner:
    """Signs transaction-log checkpoints with an asymmetric KMS key (key spec ECC_NIST_P256,
    usage SIGN_VERIFY; `Sign` with ECDSA_SHA_256). The private key never leaves KMS; the public
    key (`GetPublicKey`) is all a verifier needs."""

    algorithm = ECDSA_P256

    def __init__(
        self,
        key_id: str,
        *,
        region: str | None,
        endpoint_url: str | None = None,
        client: Any = None,
    ) -> None:
        self._key_id = key_id
        self._client = client or _kms_client(region, endpoint_url)
        self._public: Any = None

    async def _public_key(self) -> Any:
        if self._public is None:
            out = await _kms_call(self._client, "get_public_key", KeyId=self._key_id)
            # KeySpec; older answers (and moto) name it CustomerMasterKeySpec.
            spec = out.get("KeySpec") or out.get("CustomerMasterKeySpec")
            if spec != "ECC_NIST_P256" or out.get("KeyUsage") != "SIGN_VERIFY":
                raise KeyMaterialUnavailable(
                    "CLEARPORT_KMS_SIGNING_KEY_ID must name an ECC_NIST_P256 SIGN_VERIFY key."
                )
            self._public = load_public_key(bytes(out["PublicKey"]))
        return self._public

    async def key_id(self) -> str:
        return key_id_of(await self._public_key())

    async def public_key_pem(self) -> bytes:
        return public_pem(await self._public_key())

    async def sign(self, message: bytes) -> bytes:
        out = await _kms_call(
            self._client,
            "sign",
            KeyId=self._key_id,
            Message=message,
            MessageType="RAW",
            SigningAlgorithm="ECDSA_SHA_256",
        )
        return bytes(out["Signature"])
