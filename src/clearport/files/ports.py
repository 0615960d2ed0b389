"""Where file records are kept (the bytes go to object storage: storage.ports)."""

from __future__ import annotations

from typing import Protocol

from clearport.core.uow import Transaction
from clearport.files.domain import StoredFile


class FileStore(Protocol):
    async def insert(self, tx: Transaction, file: StoredFile) -> None: ...
    async def get(
        self, tx: Transaction, file_id: str, *, merchant_id: str | None = None
    ) -> StoredFile | None:
        """The file; with `merchant_id`, only if it is that merchant's."""
        ...
