"""The local key provider: a keyring file of versioned KEKs and the fingerprint key.

Layout (JSON, mode 0600, never inside the database directory):

    {"format": "clearport-keyring/1", "kcv": "<hex>", "current": 2,
     "keks": {"1": {"status": "retired", "created": "...", "sealed": null},
              "2": {"status": "active",  "created": "...", "sealed": "<b64 nonce|ct>"}},
     "fingerprint_key": "<b64 nonce|ct>",
     "signing_key": "<b64 nonce|ct>"}

`signing_key` is the Ed25519 private key that signs transaction-log checkpoints (added to an
older keyring on first use).

Every key in it is sealed (AES-256-GCM) under the *master key*, which is not in the keyring: it
comes from CLEARPORT_MASTER_KEY (hex) or from `master.key` beside the keyring. For dual control the
master key is split into N full-length components whose XOR is the key (`split_master_key`), held
by different custodians and combined only at a ceremony (docs/key-ceremony.md). `kcv` (a key check
value) lets `combine` tell a right combination from a wrong one without revealing anything.

Several processes share the file: writers take an exclusive `flock` and replace the file
atomically; readers reload it when its mtime changes or when they meet a KEK id they do not know.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clearport.core.errors import InvalidRequest, present
from clearport.vault.domain import KEY_BYTES, KeyMaterialUnavailable

FORMAT = "clearport-keyring/1"
_NONCE = 12
_PREFIX = "local-v"


def kcv_of(master: bytes) -> str:
    """Key check value: identifies the master key without revealing it."""
    return hmac.new(master, b"clearport-keyring-kcv", hashlib.sha256).hexdigest()[:12]


def _context_aad(context: Mapping[str, str]) -> bytes:
    return json.dumps(sorted(context.items()), separators=(",", ":")).encode()


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)


# --- the keyring -------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    """Atomic replace of a 0600 file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _new_signing_key(master: bytes) -> str:
    return base64.b64encode(_seal(master, secrets.token_bytes(KEY_BYTES), b"signing")).decode()


def master_key_path(keyring_path: Path) -> Path:
    return keyring_path.with_name("master.key")


class LocalKeyProvider:
    name = "local"

    def __init__(self, keyring_path: Path, *, master_key: bytes | None = None) -> None:
        self._path = keyring_path
        self._configured_master = master_key
        self._master: bytes | None = None
        self._doc: dict[str, Any] | None = None
        self._mtime_ns = -1
        self._keks: dict[int, bytes] = {}
        self._fp_key: bytes | None = None

    @property
    def path(self) -> Path:
        return self._path

    # -- file handling --

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self._path.with_name(self._path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _master_key(self, *, create: bool) -> bytes:
        if self._configured_master is not None:
            return self._configured_master
        path = master_key_path(self._path)
        if path.exists():
            master = bytes.fromhex(path.read_text().strip())
            if len(master) != KEY_BYTES:
                raise KeyMaterialUnavailable("The master key file is malformed.")
            return master
        if not create:
            raise KeyMaterialUnavailable(
                "The keyring is locked: no master key. Combine the custodians' components "
                "(`clearport keys combine`) or set CLEARPORT_MASTER_KEY."
            )
        master = secrets.token_bytes(KEY_BYTES)
        _write_private(path, master.hex().encode())
        return master

    def _create(self) -> None:
        master = self._master_key(create=True)
        kek = secrets.token_bytes(KEY_BYTES)
        fp = secrets.token_bytes(KEY_BYTES)
        doc = {
            "format": FORMAT,
            "kcv": kcv_of(master),
            "current": 1,
            "keks": {
                "1": {
                    "status": "active",
                    "created": datetime.now(UTC).isoformat(),
                    "sealed": base64.b64encode(_seal(master, kek, b"kek:1")).decode(),
                }
            },
            "fingerprint_key": base64.b64encode(_seal(master, fp, b"fingerprint")).decode(),
            "signing_key": _new_signing_key(master),
        }
        _write_private(self._path, json.dumps(doc, indent=1).encode())

    def _load(self, *, force: bool = False) -> dict[str, Any]:
        try:
            mtime = self._path.stat().st_mtime_ns
        except FileNotFoundError:
            with self._locked():
                if not self._path.exists():
                    self._create()
            mtime = self._path.stat().st_mtime_ns
        if self._doc is not None and not force and mtime == self._mtime_ns:
            return self._doc
        doc: dict[str, Any] = json.loads(self._path.read_bytes())
        if doc.get("format") != FORMAT:
            raise KeyMaterialUnavailable("The keyring file has an unknown format.")
        master = self._master or self._master_key(create=False)
        if not hmac.compare_digest(kcv_of(master), doc["kcv"]):
            raise KeyMaterialUnavailable("The master key does not open this keyring (KCV).")
        self._master = master
        keks: dict[int, bytes] = {}
        for version, entry in doc["keks"].items():
            if entry["sealed"] is not None:
                try:
                    keks[int(version)] = _open(
                        master, base64.b64decode(entry["sealed"]), f"kek:{version}".encode()
                    )
                except InvalidTag as exc:
                    raise KeyMaterialUnavailable("A KEK in the keyring fails to open.") from exc
        self._keks = keks
        self._fp_key = _open(master, base64.b64decode(doc["fingerprint_key"]), b"fingerprint")
        self._doc = doc
        self._mtime_ns = mtime
        return doc

    def _save(self, doc: dict[str, Any]) -> None:
        _write_private(self._path, json.dumps(doc, indent=1).encode())
        self._load(force=True)

    # -- public --

    def kek_versions(self) -> dict[str, str]:
        """KEK id -> status, for `keys status`."""
        doc = self._load()
        return {f"{_PREFIX}{v}": e["status"] for v, e in sorted(doc["keks"].items())}

    def kcv(self) -> str:
        """The keyring's key check value, read from the file: known while it is locked too."""
        if not self._path.exists():
            self._load()  # a first use creates the keyring
        return str(json.loads(self._path.read_bytes())["kcv"])

    def master_key(self) -> bytes:
        """For `keys split` only."""
        self._load()
        return present(self._master, "a loaded keyring has its master key")

    @staticmethod
    def _version_of(kek_id: str) -> int:
        if not kek_id.startswith(_PREFIX) or not kek_id[len(_PREFIX) :].isdigit():
            raise KeyMaterialUnavailable("A DEK refers to a KEK id this provider does not issue.")
        return int(kek_id[len(_PREFIX) :])

    async def current_kek_id(self) -> str:
        return f"{_PREFIX}{self._load()['current']}"

    async def generate_data_key(self, context: Mapping[str, str]) -> tuple[bytes, bytes, str]:
        plaintext = secrets.token_bytes(KEY_BYTES)
        wrapped, kek_id = await self.wrap(plaintext, context)
        return plaintext, wrapped, kek_id

    async def wrap(self, plaintext: bytes, context: Mapping[str, str]) -> tuple[bytes, str]:
        doc = self._load()
        version = int(doc["current"])
        return _seal(self._keks[version], plaintext, _context_aad(context)), f"{_PREFIX}{version}"

    async def unwrap(self, wrapped: bytes, kek_id: str, context: Mapping[str, str]) -> bytes:
        version = self._version_of(kek_id)
        self._load()
        if version not in self._keks:
            self._load(force=True)  # another process may have rotated
        kek = self._keks.get(version)
        if kek is None:
            raise KeyMaterialUnavailable(f"KEK {kek_id} is not in the keyring (retired?).")
        try:
            return _open(kek, wrapped, _context_aad(context))
        except (InvalidTag, ValueError) as exc:
            raise KeyMaterialUnavailable("A wrapped DEK fails to unwrap.") from exc

    async def rotate_kek(self) -> str:
        with self._locked():
            doc = self._load(force=True)
            master = present(self._master, "a loaded keyring has its master key")
            version = max(int(v) for v in doc["keks"]) + 1
            kek = secrets.token_bytes(KEY_BYTES)
            doc["keks"][str(version)] = {
                "status": "active",
                "created": datetime.now(UTC).isoformat(),
                "sealed": base64.b64encode(_seal(master, kek, f"kek:{version}".encode())).decode(),
            }
            previous = doc["keks"][str(doc["current"])]
            previous["status"] = "decrypt_only"
            doc["current"] = version
            self._save(doc)
        return f"{_PREFIX}{version}"

    async def retire_kek(self, kek_id: str) -> bool:
        version = self._version_of(kek_id)
        with self._locked():
            doc = self._load(force=True)
            if version == int(doc["current"]) or str(version) not in doc["keks"]:
                return False
            if doc["keks"][str(version)]["sealed"] is None:
                return False  # already retired
            entry = doc["keks"][str(version)]
            entry["status"] = "retired"
            entry["sealed"] = None  # key material destroyed
            entry["retired"] = datetime.now(UTC).isoformat()
            self._save(doc)
        return True

    async def kek_ids(self) -> list[str]:
        doc = self._load()
        return [f"{_PREFIX}{v}" for v, e in doc["keks"].items() if e["sealed"] is not None]

    async def fingerprint_key(self) -> bytes:
        self._load()
        return present(self._fp_key, "a loaded keyring has its fingerprint key")

    async def signing_key(self) -> bytes:
        """The Ed25519 private key (32 bytes) that signs transaction-log checkpoints."""
        doc = self._load()
        if "signing_key" not in doc:  # a keyring from before signed checkpoints
            with self._locked():
                doc = self._load(force=True)
                if "signing_key" not in doc:
                    doc["signing_key"] = _new_signing_key(
                        present(self._master, "a loaded keyring has its master key")
                    )
                    self._save(doc)
            doc = self._load()
        master = present(self._master, "a loaded keyring has its master key")
        try:
            return _open(master, base64.b64decode(doc["signing_key"]), b"signing")
        except InvalidTag as exc:
            raise KeyMaterialUnavailable("The signing key in the keyring fails to open.") from exc

    def remove_master_key_file(self) -> bool:
        """Delete `master.key` (the keyring then opens only after `combine`); False when the
        master key comes from CLEARPORT_MASTER_KEY or there is no file."""
        path = master_key_path(self._path)
        if self._configured_master is not None or not path.exists():
            return False
        path.unlink()
        return True

    def install_master_key(self, master: bytes) -> None:
        """Write a combined master key to `master.key` after checking it opens the keyring."""
        doc = json.loads(self._path.read_bytes())
        if not hmac.compare_digest(kcv_of(master), doc["kcv"]):
            raise ValueError("the components do not combine to this keyring's master key")
        _write_private(master_key_path(self._path), master.hex().encode())
        self._master = None
        self._doc = None


class ComponentFiles:
    """The key ceremony's components, each in a file of its own (0600, in a 0700 directory),
    one per custodian, so that no terminal ever shows them together. Never overwrites: a
    directory that already holds components is refused before anything is written."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def write(self, components: Sequence[str]) -> list[str]:
        self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if any(self._directory.glob("component-*")):
            raise InvalidRequest(
                f"{self._directory} already holds components: give an empty directory.",
                field="out_dir",
            )
        parts = len(components)
        written: list[Path] = []
        try:
            for index, component in enumerate(components, start=1):
                path = self._directory / f"component-{index}-of-{parts}.txt"
                # O_EXCL: an existing file (or a symlink planted there) is an error, not a target.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                written.append(path)
                with os.fdopen(fd, "w") as handle:
                    handle.write(component + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return [str(path) for path in written]
