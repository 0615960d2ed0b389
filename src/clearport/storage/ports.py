"""The object storage port."""

from __future__ import annotations

from typing import Protocol


class ObjectStorage(Protocol):
    """Where payout files, reports, dispute evidence, txlog exports and checkpoints go: a local
    directory by default, S3 when configured.

    Keys are relative paths ("settlements/2026-11-23/stl_.../items.csv", `storage.domain.
    object_key`) chosen by the caller so that a re-run writes the same key. Writes are atomic
    (a reader never sees half an object) and idempotent: writing the same bytes again changes
    nothing. Every call may go over the network: never make one inside a database transaction.
    Failures raise `StorageUnavailable`.
    """

    def uri(self, key: str) -> str:
        """Where the object is (`file:///…`, `s3://bucket/prefix/key`), without any I/O."""
        ...

    async def put(self, key: str, data: bytes) -> str:
        """Store `data` under `key`; returns the object's URI."""
        ...

    async def put_file(self, key: str, local_path: str) -> str:
        """Store a finished local file (e.g. a streamed report) under `key`, streamed (never
        read whole into memory); the local file is consumed. Returns the object's URI."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""
        ...

    async def keys(self, prefix: str) -> list[str]:
        """Every key starting with `prefix`, sorted."""
        ...

    def scratch_dir(self) -> str:
        """A local directory for files being built before `put_file` (on the same filesystem
        as a local store, so publishing is a rename)."""
        ...
