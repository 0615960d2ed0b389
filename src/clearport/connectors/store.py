"""Registered connectors in PostgreSQL (`connectors`), and the station sequence."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from clearport.connectors.ports import ConnectorRecord
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import fetch_page

_COLUMNS = (
    "id, name, type, settings, secret_display, credentials_id, enabled, version, created_at, "
    "updated_at"
)


def _record(row: asyncpg.Record) -> ConnectorRecord:
    return ConnectorRecord(
        id=row["id"],
        name=row["name"],
        type=row["type"],
        settings=dict(row["settings"]),
        secret_display=dict(row["secret_display"]),
        credentials_id=row["credentials_id"],
        enabled=row["enabled"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class PgConnectorRepository:
    async def insert(self, tx: Transaction, record: ConnectorRecord) -> bool:
        inserted = await conn_of(tx).fetchval(
            f"INSERT INTO connectors ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (name) DO NOTHING RETURNING true",
            record.id,
            record.name,
            record.type,
            record.settings,
            record.secret_display,
            record.credentials_id,
            record.enabled,
            record.version,
            record.created_at,
            record.updated_at,
        )
        return bool(inserted)

    async def update(self, tx: Transaction, record: ConnectorRecord) -> None:
        await conn_of(tx).execute(
            "UPDATE connectors SET settings = $2, secret_display = $3, credentials_id = $4,"
            " enabled = $5, version = $6, updated_at = $7 WHERE id = $1",
            record.id,
            record.settings,
            record.secret_display,
            record.credentials_id,
            record.enabled,
            record.version,
            record.updated_at,
        )

    async def get(
        self, tx: Transaction, connector_id: str, *, for_update: bool = False
    ) -> ConnectorRecord | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await conn_of(tx).fetchrow(
            f"SELECT {_COLUMNS} FROM connectors WHERE id = $1{lock}", connector_id
        )
        return None if row is None else _record(row)

    async def list(self, tx: Transaction, page: PageRequest) -> Page[ConnectorRecord]:
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {_COLUMNS} FROM connectors",
            where=[],
            args=[],
            page=page,
            row_to=_record,
        )

    async def all(self, tx: Transaction) -> Sequence[ConnectorRecord]:
        rows = await conn_of(tx).fetch(f"SELECT {_COLUMNS} FROM connectors ORDER BY id")
        return [_record(row) for row in rows]

    async def next_station(self, tx: Transaction) -> int:
        return int(await conn_of(tx).fetchval("SELECT nextval('connector_stations')"))
