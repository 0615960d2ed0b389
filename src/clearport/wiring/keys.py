"""Keys: the KEK provider (local keyring or AWS KMS), the checkpoint signer and verifier, and the
local master key's custody for the key ceremony."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clearport.vault.keyring import LocalKeyProvider
from clearport.vault.ports import KeyCustody, KeyProvider, WrappedKeys

if TYPE_CHECKING:
    from clearport.config import Settings
    from clearport.txlog.ports import CheckpointSigner, SignatureVerifier


def build_key_provider(
    kind: str,
    *,
    keyring_path: Path,
    pgdata_dir: Path,
    master_key_hex: str | None,
    kms_key_id: str | None,
    kms_region: str | None,
    kms_endpoint_url: str | None,
    shared: WrappedKeys | None = None,
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
        # Here rather than at the top: boto3 takes longer to import than the rest of the key
        # ceremony (`clearport keys split`) takes to run, and the local keyring never needs it.
        from clearport.vault.kms import AwsKmsKeyProvider

        if not kms_key_id:
            raise ValueError("CLEARPORT_KMS_KEY_ID is required with the aws-kms key provider.")
        return AwsKmsKeyProvider(
            kms_key_id,
            region=kms_region,
            keyring_path=keyring_path,
            endpoint_url=kms_endpoint_url,
            shared=shared,
        )
    raise ValueError(f"unknown key provider {kind!r}")


def key_provider_for(
    settings: Settings, *, kind: str | None = None, shared: WrappedKeys | None = None
) -> KeyProvider:
    return build_key_provider(
        kind or settings.key_provider,
        keyring_path=settings.keyring_file,
        pgdata_dir=settings.pgdata_dir,
        master_key_hex=settings.master_key.get_secret_value() if settings.master_key else None,
        kms_key_id=settings.kms_key_id,
        kms_region=settings.kms_region,
        kms_endpoint_url=settings.kms_endpoint_url,
        shared=shared,
    )


def checkpoint_signer_for(settings: Settings) -> CheckpointSigner:
    """The key that signs txlog checkpoints: the local keyring's Ed25519 key, or the KMS
    signing key (CLEARPORT_KMS_SIGNING_KEY_ID) with the `aws-kms` provider."""
    if settings.key_provider == "aws-kms":
        from clearport.vault.kms import KmsCheckpointSigner

        if not settings.kms_signing_key_id:
            raise ValueError(
                "CLEARPORT_KMS_SIGNING_KEY_ID (an ECC_NIST_P256 SIGN_VERIFY key) is required with "
                "the aws-kms key provider: it signs the transaction-log checkpoints."
            )
        return KmsCheckpointSigner(
            settings.kms_signing_key_id,
            region=settings.kms_region,
            endpoint_url=settings.kms_endpoint_url,
        )
    from clearport.txlog.signatures import Ed25519CheckpointSigner

    provider = key_provider_for(settings, kind="local")
    if not isinstance(provider, LocalKeyProvider):  # pragma: no cover - build_key_provider
        raise TypeError("the local key provider is a LocalKeyProvider")
    return Ed25519CheckpointSigner(provider.signing_key)


def checkpoint_verifier(public_key_pem: bytes) -> SignatureVerifier:
    """A verifier of checkpoints for one public key (PEM or DER); ValueError if unusable."""
    from clearport.txlog.signatures import PublicKeyVerifier

    return PublicKeyVerifier(public_key_pem)


def local_key_custody(settings: Settings) -> KeyCustody | None:
    """The local keyring's master key for `keys split|combine`; None with another provider."""
    if settings.key_provider != "local":
        return None
    provider = key_provider_for(settings, kind="local")
    if not isinstance(provider, LocalKeyProvider):  # pragma: no cover - build_key_provider
        raise TypeError("the local key provider is a LocalKeyProvider")
    return provider
