"""The relay, deliveries and their attempts, retention, and the backlog the metrics read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from clearport.core.errors import present
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import add_filters, fetch_page
from clearport.db.statements import Params
from clearport.events.domain import Event
from clearport.events.store import EVENTS
from clearport.webhooks.domain import (
    AttemptOutcome,
    ClaimedBatch,
    DeliveryAttempt,
    DueDelivery,
)
from clearport.webhooks.ports import Backlog, Relayed
from clearport.webhooks.store.endpoints import ENDPOINT_COLUMNS, endpoint_of

# One statement, one commit: claim queued events (SKIP LOCKED, so relays in several workers
# never wait for one another nor take the same event), fan each out to the endpoints that
# receive it, and say which endpoints got work.
_relay = Params()
_RELAY = f"""
WITH claimed AS (
    DELETE FROM event_relay_queue
     WHERE seq IN (SELECT seq FROM event_relay_queue ORDER BY seq
                    LIMIT {_relay("limit")} FOR UPDATE SKIP LOCKED)
    RETURNING seq
), fanned AS (
    INSERT INTO webhook_deliveries
           (endpoint_id, event_seq, event_id, status, next_attempt_at, deadline_at, created_at)
    SELECT w.id, e.seq, e.id, 'pending', {_relay("now")}, {_relay("deadline")}, {_relay("now")}
      FROM claimed c
      JOIN events e ON e.seq = c.seq
      JOIN webhook_endpoints w
        ON coalesce(w.merchant_id, '') = coalesce(e.merchant_id, '')
       AND w.deleted_at IS NULL AND w.status = 'enabled'
       AND w.enabled_events && ARRAY[e.type, '*']
     ORDER BY e.seq
    ON CONFLICT DO NOTHING
    RETURNING endpoint_id
)
SELECT (SELECT count(*) FROM claimed) AS events,
       ARRAY(SELECT DISTINCT endpoint_id FROM fanned) AS endpoint_ids
"""

_due = Params()
_DUE_ENDPOINTS = f"""
SELECT w.id FROM webhook_endpoints w
 WHERE w.deleted_at IS NULL AND w.status = 'enabled'
   AND (w.lease_until IS NULL OR w.lease_until < {_due("now")})
   AND EXISTS (SELECT 1 FROM webhook_deliveries d
                WHERE d.endpoint_id = w.id AND d.status = 'pending'
                  AND d.next_attempt_at <= {_due("now")})
 ORDER BY w.id
 LIMIT {_due("limit")}
"""

_lease = Params()
_LEASE = f"""
UPDATE webhook_endpoints
   SET lease_owner = {_lease("owner")}, lease_until = {_lease("until")}
 WHERE id = {_lease("id")} AND deleted_at IS NULL AND status = 'enabled'
   AND (lease_until IS NULL OR lease_until < {_lease("now")} OR lease_owner = {_lease("owner")})
RETURNING {ENDPOINT_COLUMNS}
"""

_EVENT_COLUMNS = ", ".join(f"e.{c} AS event_{c}" for c in EVENTS.column_names)
_claim = Params()
_CLAIM = f"""
SELECT d.id, d.attempts, d.created_at, d.deadline_at, {_EVENT_COLUMNS}
  FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq
 WHERE d.endpoint_id = {_claim("endpoint_id")} AND d.status = 'pending'
   AND d.next_attempt_at <= {_claim("now")}
 ORDER BY d.event_seq, d.id
 LIMIT {_claim("limit")}
"""
# The current secret first, then the previous one while its overlap lasts.
_SIGNING_SECRETS = """
SELECT secret_id FROM webhook_endpoint_secrets
 WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2)
 ORDER BY expires_at DESC NULLS FIRST
"""

_INSERT_ATTEMPTS = """
INSERT INTO webhook_delivery_attempts (id, delivery_id, endpoint_id, event_id, attempt,
                                       status_code, error, duration_ms, next_retry_at,
                                       created_at)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::int[],
                     $7::text[], $8::int[], $9::timestamptz[], $10::timestamptz[])
"""
# Only deliveries still pending: one cancelled meanwhile (its endpoint disabled or deleted)
# stays cancelled, though the attempt that was under way is logged.
_UPDATE_DELIVERIES = """
UPDATE webhook_deliveries d
   SET status = u.status, attempts = u.attempts,
       next_attempt_at = coalesce(u.next_at, d.next_attempt_at),
       finished_at = CASE WHEN u.status = 'pending' THEN NULL ELSE $5::timestamptz END
  FROM unnest($1::bigint[], $2::text[], $3::int[], $4::timestamptz[]) AS u(id, status,
                                                                              attempts, next_at)
 WHERE d.id = u.id AND d.status = 'pending'
"""

_redeliver = Params()
_REDELIVER = f"""
INSERT INTO webhook_deliveries (endpoint_id, event_seq, event_id, status, next_attempt_at,
                                deadline_at, redelivery, created_at)
SELECT {_redeliver("endpoint_id")}, seq, id, 'pending', {_redeliver("now")},
       {_redeliver("deadline")}, true, {_redeliver("now")}
  FROM events WHERE id = {_redeliver("event_id")}
"""

_ATTEMPT_COLUMNS = (
    "id, endpoint_id, event_id, attempt, status_code, error, duration_ms, next_retry_at, created_at"
)

_BACKLOG = """
SELECT (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending') AS pending,
       (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' AND attempts > 0)
           AS retrying,
       least(
           (SELECT created_at FROM events WHERE seq = (
                SELECT min(event_seq) FROM webhook_deliveries WHERE status = 'pending')),
           (SELECT created_at FROM events WHERE seq = (SELECT min(seq) FROM event_relay_queue))
       ) AS oldest_event_at
"""


def _event(row: asyncpg.Record) -> Event:
    return Event(**{c: row[f"event_{c}"] for c in EVENTS.column_names})


def _attempt(row: asyncpg.Record) -> DeliveryAttempt:
    return DeliveryAttempt(
        id=row["id"],
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        attempt=int(row["attempt"]),
        status_code=row["status_code"],
        error=row["error"],
        duration_ms=int(row["duration_ms"]),
        next_retry_at=row["next_retry_at"],
        created_at=row["created_at"],
    )


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class PgDeliveryStore:
    async def relay(
        self, tx: Transaction, *, limit: int, now: datetime, window_s: float
    ) -> Relayed:
        row = await conn_of(tx).fetchrow(
            _RELAY,
            *_relay.args(limit=limit, now=now, deadline=now + timedelta(seconds=window_s)),
        )
        row = present(row, "a SELECT of two subqueries returns one row")
        return Relayed(int(row["events"]), tuple(row["endpoint_ids"]))

    async def due_endpoints(self, tx: Transaction, now: datetime, limit: int) -> list[str]:
        rows = await conn_of(tx).fetch(_DUE_ENDPOINTS, *_due.args(now=now, limit=limit))
        return [str(r["id"]) for r in rows]

    async def claim(
        self,
        tx: Transaction,
        endpoint_id: str,
        *,
        lease_owner: str,
        lease_until: datetime,
        now: datetime,
        limit: int,
    ) -> ClaimedBatch | None:
        conn = conn_of(tx)
        row = await conn.fetchrow(
            _LEASE, *_lease.args(owner=lease_owner, until=lease_until, id=endpoint_id, now=now)
        )
        if row is None:
            return None
        due = await conn.fetch(_CLAIM, *_claim.args(endpoint_id=endpoint_id, now=now, limit=limit))
        secrets = await conn.fetch(_SIGNING_SECRETS, endpoint_id, now)
        return ClaimedBatch(
            endpoint=endpoint_of(row),
            secret_ids=tuple(str(s["secret_id"]) for s in secrets),
            deliveries=tuple(
                DueDelivery(
                    id=int(d["id"]),
                    event=_event(d),
                    attempts=int(d["attempts"]),
                    created_at=d["created_at"],
                    deadline_at=d["deadline_at"],
                )
                for d in due
            ),
        )

    async def release(self, tx: Transaction, endpoint_id: str, lease_owner: str) -> None:
        await conn_of(tx).execute(
            "UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = NULL"
            " WHERE id = $1 AND lease_owner = $2",
            endpoint_id,
            lease_owner,
        )

    async def has_due(self, tx: Transaction, endpoint_id: str, now: datetime) -> bool:
        return bool(
            await conn_of(tx).fetchval(
                "SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE endpoint_id = $1"
                " AND status = 'pending' AND next_attempt_at <= $2)",
                endpoint_id,
                now,
            )
        )

    async def record(
        self,
        tx: Transaction,
        endpoint_id: str,
        outcomes: Sequence[AttemptOutcome],
        *,
        failing_since: datetime | None,
        now: datetime,
    ) -> None:
        conn = conn_of(tx)
        attempts = [o.attempt for o in outcomes]
        if attempts:
            await conn.execute(
                _INSERT_ATTEMPTS,
                [a.id for a in attempts],
                [o.delivery.id for o in outcomes],
                [a.endpoint_id for a in attempts],
                [a.event_id for a in attempts],
                [a.attempt for a in attempts],
                [a.status_code for a in attempts],
                [a.error for a in attempts],
                [a.duration_ms for a in attempts],
                [a.next_retry_at for a in attempts],
                [a.created_at for a in attempts],
            )
            await conn.execute(
                _UPDATE_DELIVERIES,
                [o.delivery.id for o in outcomes],
                [str(o.status) for o in outcomes],
                [o.attempt.attempt for o in outcomes],
                [o.attempt.next_retry_at for o in outcomes],
                now,
            )
        await conn.execute(
            "UPDATE webhook_endpoints SET failing_since = $2 WHERE id = $1",
            endpoint_id,
            failing_since,
        )

    async def redeliver(
        self, tx: Transaction, endpoint_id: str, event_id: str, *, now: datetime, window_s: float
    ) -> bool:
        status = await conn_of(tx).execute(
            _REDELIVER,
            *_redeliver.args(
                endpoint_id=endpoint_id,
                now=now,
                deadline=now + timedelta(seconds=window_s),
                event_id=event_id,
            ),
        )
        return _count(status) == 1

    async def list_attempts(
        self,
        tx: Transaction,
        endpoint_id: str,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[DeliveryAttempt]:
        where = ["endpoint_id = $1"]
        args: list[Any] = [endpoint_id]
        add_filters(where, args, filters, equal={"event": "event_id"})
        return await fetch_page(
            conn_of(tx),
            select=f"SELECT {_ATTEMPT_COLUMNS} FROM webhook_delivery_attempts",
            where=where,
            args=args,
            page=page,
            row_to=_attempt,
        )

    async def attempts_for_events(
        self, tx: Transaction, event_ids: Sequence[str], limit: int
    ) -> list[DeliveryAttempt]:
        # By webhook_delivery_attempts_event (migration 0017).
        rows = await conn_of(tx).fetch(
            f"SELECT {_ATTEMPT_COLUMNS} FROM webhook_delivery_attempts "
            "WHERE event_id = ANY($1::text[]) ORDER BY id LIMIT $2",
            list(event_ids),
            limit,
        )
        return [_attempt(r) for r in rows]

    async def purge_attempts(self, tx: Transaction, before: datetime, limit: int) -> int:
        return _count(
            await conn_of(tx).execute(
                "DELETE FROM webhook_delivery_attempts WHERE id IN (SELECT id FROM"
                " webhook_delivery_attempts WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
                before,
                limit,
            )
        )

    async def purge_deliveries(self, tx: Transaction, before: datetime, limit: int) -> int:
        return _count(
            await conn_of(tx).execute(
                "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries"
                " WHERE status <> 'pending' AND finished_at < $1 ORDER BY finished_at LIMIT $2)",
                before,
                limit,
            )
        )

    async def purge_events(self, tx: Transaction, before: datetime, limit: int) -> int:
        # Oldest first along the primary key: the scan stops at the first young event.
        return _count(
            await conn_of(tx).execute(
                """
                DELETE FROM events WHERE seq IN (
                    SELECT e.seq FROM events e
                     WHERE e.created_at < $1
                       AND NOT EXISTS (SELECT 1 FROM event_relay_queue q WHERE q.seq = e.seq)
                       AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                                        WHERE d.event_seq = e.seq AND d.status = 'pending')
                     ORDER BY e.seq LIMIT $2)
                """,
                before,
                limit,
            )
        )

    async def backlog(self, tx: Transaction) -> Backlog:
        row = present(await conn_of(tx).fetchrow(_BACKLOG), "one row of subqueries")
        return Backlog(int(row["pending"]), int(row["retrying"]), row["oldest_event_at"])
