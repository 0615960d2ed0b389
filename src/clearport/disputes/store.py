"""Disputes in PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import add_filters, fetch_page
from clearport.db.statements import Params, Table
from clearport.disputes.domain import Dispute, DisputeReason, DisputeStatus

DISPUTES = Table(
    "disputes",
    (
        ("id", "text"),
        ("merchant_id", "text"),
        ("payment_id", "text"),
        ("connector", "text"),
        ("inquiry", "boolean"),
        ("amount", "bigint"),
        ("fee", "bigint"),
        ("currency", "text"),
        ("status", "text"),
        ("reason", "text"),
        ("network_reason_code", "text"),
        ("network_case_id", "text"),
        ("evidence_due_by", "timestamptz"),
        ("created_by", "text"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("evidence", "jsonb"),
        ("evidence_submitted_at", "timestamptz"),
        ("submission_count", "integer"),
        ("from_available", "bigint"),
        ("reversal_id", "text"),
        ("closed_at", "timestamptz"),
    ),
)
DISPUTES.check_matches(Dispute)
# What a dispute's steps change; the rest is fixed at creation.
_CHANGES = (
    "status",
    "evidence",
    "evidence_submitted_at",
    "submission_count",
    "reversal_id",
    "updated_at",
    "closed_at",
)
_SELECT = f"SELECT {DISPUTES.column_list()} FROM disputes"
_insert = Params()
# The network case is unique per connector (and stage: an inquiry and its chargeback share it):
# a second dispute of one case inserts nothing.
_INSERT = (
    f"INSERT INTO disputes ({DISPUTES.column_list()}) VALUES ({DISPUTES.values(_insert, 'd')}) "
    "ON CONFLICT (connector, network_case_id, inquiry) WHERE network_case_id IS NOT NULL "
    "DO NOTHING RETURNING true"
)
_update = Params()
_UPDATE = (
    "UPDATE disputes SET "
    + ", ".join(f"{c} = {_update(f'd.{c}', dict(DISPUTES.columns)[c])}" for c in _CHANGES)
    + f" WHERE id = {_update('d.id')}"
)


def _evidence(value: Any) -> dict[str, str]:
    return dict(json.loads(value) if isinstance(value, str) else value)


def _dispute(row: asyncpg.Record) -> Dispute:
    return DISPUTES.record(
        Dispute, row, status=DisputeStatus, reason=DisputeReason, evidence=_evidence
    )


class PgDisputeStore:
    async def insert(self, tx: Transaction, dispute: Dispute) -> bool:
        values = DISPUTES.named("d", DISPUTES.row(dispute))
        return bool(await conn_of(tx).fetchval(_INSERT, *_insert.args(values)))

    async def update(self, tx: Transaction, dispute: Dispute) -> None:
        row = DISPUTES.row(dispute)
        values = {f"d.{c}": row[c] for c in ("id", *_CHANGES)}
        await conn_of(tx).execute(_UPDATE, *_update.args(values))

    async def get(
        self,
        tx: Transaction,
        dispute_id: str,
        *,
        merchant_id: str | None = None,
        for_update: bool = False,
    ) -> Dispute | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await conn_of(tx).fetchrow(
            f"{_SELECT} WHERE id = $1 AND ($2::text IS NULL OR merchant_id = $2){lock}",
            dispute_id,
            merchant_id,
        )
        return None if row is None else _dispute(row)

    async def open_inquiry(
        self, tx: Transaction, connector: str, network_case_id: str
    ) -> Dispute | None:
        row = await conn_of(tx).fetchrow(
            f"{_SELECT} WHERE connector = $1 AND network_case_id = $2 AND inquiry "
            "AND status <> 'warning_closed' FOR UPDATE",
            connector,
            network_case_id,
        )
        return None if row is None else _dispute(row)

    async def list(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Dispute]:
        where, args = (["merchant_id = $1"], [merchant_id]) if merchant_id else ([], [])
        add_filters(where, args, filters, equal={"status": "status", "payment_id": "payment_id"})
        return await fetch_page(
            conn_of(tx), select=_SELECT, where=where, args=args, page=page, row_to=_dispute
        )
