"""The AWS KMS key provider: DEKs are generated and unwrapped by KMS, never by us.

`GenerateDataKey` / `Encrypt` / `Decrypt` with an `EncryptionContext` (merchant, DEK version), so
a wrapped DEK presented for another merchant is refused by KMS itself. The KEK is the KMS key
named by CLEARPORT_KMS_KEY_ID (key id, ARN or alias); its resolved ARN is the `kek_id` stored
beside each DEK. KMS rotates key material on its own; *our* KEK rotation is pointing the alias
(or setting) at a new key and running `clearport keys rotate-kek`, which re-wraps every DEK under
it. Retiring the old key (scheduling its deletion) stays an AWS-side decision.

The fingerprint HMAC key is a data key too: generated once, kept only KMS-wrapped in the
keyring file, unwrapped at start. boto3 is blocking, so calls run in a worker thread.
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

from clearport.vault.domain import KeyMaterialUnavailable

_FINGERPRINT_CONTEXT = {"purpose": "clearport-fingerprint"}
_ARN_TTL_S = 60.0


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
    ) -> None:
        self._key_id = key_id
        self._keyring_path = keyring_path
        self._client = client or boto3.client(
            "kms",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(
                connect_timeout=3, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}
            ),
        )
        self._arn: str | None = None
        self._arn_at = 0.0
        self._fp_key: bytes | None = None

    def set_key_id(self, key_id: str) -> None:
        """Point at another KMS key (tests; a deployment changes the setting instead)."""
        self._key_id = key_id
        self._arn = None

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            return dict(getattr(self._client, method)(**kwargs))

        try:
            return await asyncio.to_thread(run)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            raise KeyMaterialUnavailable(f"KMS {method} refused: {code}.") from exc
        except BotoCoreError as exc:
            raise KeyMaterialUnavailable(f"KMS {method} failed: {type(exc).__name__}.") from exc

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
        if self._fp_key is not None:
            return self._fp_key
        path = self._keyring_path
        if not path.exists():
            plaintext, wrapped, kek_id = await self.generate_data_key(_FINGERPRINT_CONTEXT)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            doc = {
                "format": "clearport-kms-keyring/1",
                "fingerprint_key": base64.b64encode(wrapped).decode(),
                "kek_id": kek_id,
            }
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process won the race: use its key
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(json.dumps(doc))
                self._fp_key = plaintext
                return plaintext
        doc = json.loads(path.read_text())
        self._fp_key = await self.unwrap(
            base64.b64decode(doc["fingerprint_key"]), doc["kek_id"], _FINGERPRINT_CONTEXT
        )
        return self._fp_key
