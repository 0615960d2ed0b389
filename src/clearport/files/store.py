"""File records in PostgreSQL."""

from __future__ import annotations

import asyncpg

from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.statements import Params, Table
from clearport.files.domain import FilePurpose, FileType, StoredFile

FILES = Table(
    "files",
    (
        ("id", "text"),
        ("merchant_id", "text"),
        ("purpose", "text"),
        ("type", "text"),
        ("size", "bigint"),
        ("sha256", "text"),
        ("object_key", "text"),
        ("created_by", "text"),
        ("created_at", "timestamptz"),
    ),
)
FILES.check_matches(StoredFile)
_INSERT_PARAMS = Params()
_INSERT = f"INSERT INTO files ({FILES.column_list()}) VALUES ({FILES.values(_INSERT_PARAMS, 'f')})"
_SELECT = f"SELECT {FILES.column_list()} FROM files"


def _file(row: asyncpg.Record) -> StoredFile:
    return FILES.record(StoredFile, row, purpose=FilePurpose, type=FileType)


class PgFileStore:
    async def insert(self, tx: Transaction, file: StoredFile) -> None:
        values = FILES.named("f", FILES.row(file))
        await conn_of(tx).execute(_INSERT, *_INSERT_PARAMS.args(values))

    async def get(
        self, tx: Transaction, file_id: str, *, merchant_id: str | None = None
    ) -> StoredFile | None:
        row = await conn_of(tx).fetchrow(
            f"{_SELECT} WHERE id = $1 AND ($2::text IS NULL OR merchant_id = $2)",
            file_id,
            merchant_id,
        )
        return None if row is None else _file(row)
