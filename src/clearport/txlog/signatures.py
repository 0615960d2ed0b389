"""Checkpoint signatures: Ed25519 (the local keyring's key) and ECDSA P-256 with SHA-256 (what
AWS KMS `Sign` makes with an ECC_NIST_P256 key), checked against a public key alone.

A key is named by `key_id_of`: "sha256:" and the first 32 hex digits of the SHA-256 of its
SubjectPublicKeyInfo (DER), the same for a PEM file, a KMS `GetPublicKey` answer or the keyring,
so a verifier holding only the public key can say "signed by another key".
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from clearport.txlog.domain import Checkpoint

ED25519 = "ed25519"
ECDSA_P256 = "ecdsa-p256-sha256"

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def public_pem(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id_of(key: PublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()[:32]


def load_public_key(pem_or_der: bytes) -> PublicKey:
    """A public key from PEM or DER; ValueError if it is neither Ed25519 nor P-256."""
    if pem_or_der.lstrip().startswith(b"-----"):
        key = serialization.load_pem_public_key(pem_or_der)
    else:
        key = serialization.load_der_public_key(pem_or_der)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ValueError("checkpoint keys are Ed25519 or ECDSA P-256")


class PublicKeyVerifier:
    """The `SignatureVerifier` for one trusted public key."""

    def __init__(self, public_key_pem: bytes) -> None:
        self._key = load_public_key(public_key_pem)
        self.key_id = key_id_of(self._key)
        self.algorithm = ED25519 if isinstance(self._key, ed25519.Ed25519PublicKey) else ECDSA_P256

    def check(self, checkpoint: Checkpoint) -> str | None:
        where = f"checkpoint at {checkpoint.seq}"
        if checkpoint.key_id != self.key_id:
            return f"{where} is signed by key {checkpoint.key_id}, not the trusted {self.key_id}"
        if checkpoint.algorithm != self.algorithm:
            return f"{where} claims {checkpoint.algorithm}; the trusted key is {self.algorithm}"
        try:
            if isinstance(self._key, ed25519.Ed25519PublicKey):
                self._key.verify(checkpoint.signature, checkpoint.message())
            else:
                self._key.verify(
                    checkpoint.signature, checkpoint.message(), ec.ECDSA(hashes.SHA256())
                )
        except (InvalidSignature, ValueError):
            return f"{where} has a bad signature"
        return None


class Ed25519CheckpointSigner:
    """Signs with an Ed25519 private key loaded (once) from where the key provider keeps it."""

    algorithm = ED25519

    def __init__(self, load_private_key: Callable[[], Awaitable[bytes]]) -> None:
        self._load = load_private_key
        self._key: ed25519.Ed25519PrivateKey | None = None

    async def _private(self) -> ed25519.Ed25519PrivateKey:
        if self._key is None:
            self._key = ed25519.Ed25519PrivateKey.from_private_bytes(await self._load())
        return self._key

    async def key_id(self) -> str:
        return key_id_of((await self._private()).public_key())

    async def sign(self, message: bytes) -> bytes:
        return (await self._private()).sign(message)

    async def public_key_pem(self) -> bytes:
        return public_pem((await self._private()).public_key())
