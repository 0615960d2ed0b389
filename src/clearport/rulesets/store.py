"""Rule sets in PostgreSQL: one table per kind (`routing_rule_sets`, `risk_rule_sets`), the same
shape, a version sequence each."""

from __future__ import annotations

import re
from datetime import datetime

import asyncpg

from clearport.core.errors import invariant
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import fetch_page
from clearport.rulesets.domain import RuleSetRecord, RuleSetStatus

_COLUMNS = "id, version, status, body, created_at, activated_at, deactivated_at"
_TABLES = {
    "routing_rule_sets": "routing_rule_set_versions",
    "risk_rule_sets": "risk_rule_set_versions",
}


def _record(row: asyncpg.Record) -> RuleSetRecord:
    return RuleSetRecord(
        id=row["id"],
        version=row["version"],
        status=RuleSetStatus(row["status"]),
        body=dict(row["body"]),
        created_at=row["created_at"],
        activated_at=row["activated_at"],
        deactivated_at=row["deactivated_at"],
    )


class PgRuleSetRepository:
    def __init__(self, table: str) -> None:
        invariant(table in _TABLES and re.fullmatch(r"[a-z_]+", table) is not None, "a rule table")
        self._table = table
        self._sequence = _TABLES[table]

    async def next_version(self, tx: Transaction) -> int:
        return int(await conn_of(tx).fetchval(f"SELECT nextval('{self._sequence}')"))

    async def insert(self, tx: Transaction, record: RuleSetRecord) -> None:
        await conn_of(tx).execute(
            f"INSERT INTO {self._table} ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            record.id,
            record.version,
            str(record.status),
            record.body,
            record.created_at,
            record.activated_at,
            record.deactivated_at,
        )

    async def get(
        self, tx: Transaction, rule_set_id: str, *, for_update: bool = False
    ) -> RuleSetRecord | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await conn_of(tx).fetchrow(
            f"SELECT {_COLUMNS} FROM {self._table} WHERE id = $1{lock}", rule_set_id
        )
        return None if row is None else _record(row)

    async def active(self, tx: Transaction) -> RuleSetRecord | None:
        row = await conn_of(tx).fetchrow(
            f"SELECT {_COLUMNS} FROM {self._table} WHERE status = 'active'"
        )
        return None if row is None else _record(row)

    async def list(self, tx: Transaction, page: PageRequest) -> Page[RuleSetRecord]:
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {_COLUMNS} FROM {self._table}",
            where=[],
            args=[],
            page=page,
            row_to=_record,
        )

    async def activate(self, tx: Transaction, rule_set_id: str, now: datetime) -> None:
        conn = conn_of(tx)
        # One statement would check the one-active index mid-way; two keep it simple.
        await conn.execute(
            f"UPDATE {self._table} SET status = 'inactive', deactivated_at = $1 "
            "WHERE status = 'active'",
            now,
        )
        await conn.execute(
            f"UPDATE {self._table} SET status = 'active', activated_at = $2, "
            "deactivated_at = NULL WHERE id = $1",
            rule_set_id,
            now,
        )
