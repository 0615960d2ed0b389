"""The object storage port."""

from __future__ import annotations

from typing import Protocol


class ObjectStorage(Protocol):
    """Where payout files and reports go: a local directory by default, S3 later.

    Keys are relative paths ("settlements/2026-11-23/stl_.../items.csv"). Writes are atomic (a
    reader never sees half a file) and idempotent: writing the same bytes again is a no-op.
    """

    def put(self, key: str, data: bytes) -> str:
        """Store `data` under `key`; returns the object's URI."""
        ...

    def put_file(self, key: str, local_path: str) -> str:
        """Move a finished local file (e.g. a streamed report) under `key`; returns its URI."""
        ...

    def get(self, key: str) -> bytes | None: ...
