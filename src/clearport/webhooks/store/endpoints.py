"""webhook_endpoints and webhook_endpoint_secrets."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import fetch_page
from clearport.db.statements import Params
from clearport.webhooks.domain import EndpointStatus, WebhookEndpoint

ENDPOINT_COLUMNS = (
    "id, merchant_id, url, description, enabled_events, status, disabled_reason, failing_since,"
    " created_at, updated_at"
)
_SELECT = f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints"


def endpoint_of(row: asyncpg.Record) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row["id"],
        merchant_id=row["merchant_id"],
        url=row["url"],
        description=row["description"],
        enabled_events=tuple(row["enabled_events"]),
        status=EndpointStatus(row["status"]),
        disabled_reason=row["disabled_reason"],
        failing_since=row["failing_since"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_ins = Params()
_INSERT = f"""
    INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS})
    VALUES ({_ins("id")}, {_ins("merchant_id")}, {_ins("url")}, {_ins("description")},
            {_ins("enabled_events")}, {_ins("status")}, {_ins("disabled_reason")},
            {_ins("failing_since")}, {_ins("created_at")}, {_ins("updated_at")})
"""
_upd = Params()
_UPDATE = f"""
    UPDATE webhook_endpoints
       SET url = {_upd("url")}, description = {_upd("description")},
           enabled_events = {_upd("enabled_events")}, status = {_upd("status")},
           disabled_reason = {_upd("disabled_reason")}, failing_since = {_upd("failing_since")},
           updated_at = {_upd("updated_at")}
     WHERE id = {_upd("id")} AND deleted_at IS NULL
"""

# The current secret keeps signing until `previous_expires_at`; one older than it goes now:
# at most two secrets sign at any time.
_rot = Params()
_ROTATE = f"""
WITH dropped AS (
    DELETE FROM webhook_endpoint_secrets
     WHERE endpoint_id = {_rot("endpoint_id")} AND expires_at IS NOT NULL
    RETURNING secret_id
), previous AS (
    UPDATE webhook_endpoint_secrets SET expires_at = {_rot("previous_expires_at")}
     WHERE endpoint_id = {_rot("endpoint_id")} AND expires_at IS NULL
    RETURNING secret_id
)
SELECT secret_id FROM dropped
UNION ALL
SELECT secret_id FROM previous WHERE {_rot("previous_expires_at")} <= {_rot("at")}
"""


def _row(e: WebhookEndpoint) -> dict[str, object]:
    return {
        "id": e.id,
        "merchant_id": e.merchant_id,
        "url": e.url,
        "description": e.description,
        "enabled_events": list(e.enabled_events),
        "status": str(e.status),
        "disabled_reason": e.disabled_reason,
        "failing_since": e.failing_since,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
    }


class PgEndpointStore:
    async def insert_endpoint(self, tx: Transaction, endpoint: WebhookEndpoint) -> None:
        await conn_of(tx).execute(_INSERT, *_ins.args(_row(endpoint)))

    async def get_endpoint(
        self, tx: Transaction, endpoint_id: str, *, for_update: bool = False
    ) -> WebhookEndpoint | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await conn_of(tx).fetchrow(
            f"{_SELECT} WHERE id = $1 AND deleted_at IS NULL{lock}", endpoint_id
        )
        return None if row is None else endpoint_of(row)

    async def list_endpoints(
        self, tx: Transaction, merchant_id: str | None, page: PageRequest
    ) -> Page[WebhookEndpoint]:
        where = ["deleted_at IS NULL"]
        args: list[object] = []
        if merchant_id is not None:
            args.append(merchant_id)
            where.append("coalesce(merchant_id, '') = $1")
        return await fetch_page(
            conn_of(tx), select=_SELECT, where=where, args=args, page=page, row_to=endpoint_of
        )

    async def update_endpoint(self, tx: Transaction, endpoint: WebhookEndpoint) -> None:
        row = _row(endpoint)
        del row["merchant_id"], row["created_at"]
        await conn_of(tx).execute(_UPDATE, *_upd.args(row))

    async def delete_endpoint(self, tx: Transaction, endpoint_id: str, at: datetime) -> None:
        await conn_of(tx).execute(
            "UPDATE webhook_endpoints SET deleted_at = $2, updated_at = $2, lease_owner = NULL,"
            " lease_until = NULL WHERE id = $1",
            endpoint_id,
            at,
        )

    async def cancel_pending(self, tx: Transaction, endpoint_id: str, at: datetime) -> int:
        status = await conn_of(tx).execute(
            "UPDATE webhook_deliveries SET status = 'cancelled', finished_at = $2"
            " WHERE endpoint_id = $1 AND status = 'pending'",
            endpoint_id,
            at,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def add_secret(
        self, tx: Transaction, endpoint_id: str, secret_id: str, at: datetime
    ) -> None:
        await conn_of(tx).execute(
            "INSERT INTO webhook_endpoint_secrets (endpoint_id, secret_id, created_at)"
            " VALUES ($1, $2, $3)",
            endpoint_id,
            secret_id,
            at,
        )

    async def rotate_secret(
        self,
        tx: Transaction,
        endpoint_id: str,
        secret_id: str,
        *,
        previous_expires_at: datetime,
        at: datetime,
    ) -> list[str]:
        rows = await conn_of(tx).fetch(
            _ROTATE,
            *_rot.args(endpoint_id=endpoint_id, previous_expires_at=previous_expires_at, at=at),
        )
        await self.add_secret(tx, endpoint_id, secret_id, at)
        return [str(r["secret_id"]) for r in rows]

    async def secret_ids(self, tx: Transaction, endpoint_id: str) -> list[str]:
        rows = await conn_of(tx).fetch(
            "SELECT secret_id FROM webhook_endpoint_secrets WHERE endpoint_id = $1", endpoint_id
        )
        return [str(r["secret_id"]) for r in rows]

    async def expired_secret_ids(self, tx: Transaction, at: datetime, limit: int) -> list[str]:
        rows = await conn_of(tx).fetch(
            "SELECT secret_id FROM webhook_endpoint_secrets WHERE expires_at <= $1"
            " ORDER BY expires_at LIMIT $2",
            at,
            limit,
        )
        return [str(r["secret_id"]) for r in rows]
