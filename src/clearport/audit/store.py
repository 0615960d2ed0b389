"""The append-only audit log (the database refuses UPDATE, DELETE and TRUNCATE)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from clearport.audit.domain import AuditEvent, Outcome
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import add_filters, fetch_page

_COLUMNS = "id, actor, event_type, occurred_at, outcome, origin_ip, resource, details"


def _event(row: asyncpg.Record) -> AuditEvent:
    return AuditEvent(
        id=row["id"],
        actor=row["actor"],
        event_type=row["event_type"],
        occurred_at=row["occurred_at"],
        outcome=Outcome(row["outcome"]),
        origin_ip=row["origin_ip"],
        resource=row["resource"],
        details=row["details"],
    )


class PgAuditLog:
    async def append(self, tx: Transaction, event: AuditEvent) -> None:
        await conn_of(tx).execute(
            f"INSERT INTO audit_events ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            event.id,
            event.actor,
            event.event_type,
            event.occurred_at,
            str(event.outcome),
            event.origin_ip,
            event.resource,
            event.details,
        )

    async def list(
        self, tx: Transaction, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[AuditEvent]:
        where: list[str] = []
        args: list[Any] = []
        columns = ("event_type", "resource", "actor", "outcome")
        add_filters(
            where, args, filters, equal={c: c for c in columns}, created_column="occurred_at"
        )
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {_COLUMNS} FROM audit_events",
            where=where,
            args=args,
            page=page,
            row_to=_event,
        )
