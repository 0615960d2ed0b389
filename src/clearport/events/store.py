"""The outbox table `events` in PostgreSQL.

Besides the store, the step other stores splice into a statement of their own: the payment store
writes a state change and its event in one statement (docs/decisions/0300), with this SQL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.db.database import conn_of
from clearport.db.pagination import add_filters, fetch_page
from clearport.db.statements import Params, Table
from clearport.events.domain import Event

EVENTS = Table(
    "events",
    (
        ("id", "text"),
        ("merchant_id", "text"),
        ("type", "text"),
        ("object_id", "text"),
        ("data", "jsonb"),
        ("created_at", "timestamptz"),
    ),
)


def insert_event_step(p: Params, name: str, *, once_per_row_of: str) -> str:
    """`INSERT` the event named `name` once per row of the enclosing statement's CTE
    `once_per_row_of`: not at all when that step changed nothing. Values: `event_values`."""
    return (
        f"INSERT INTO {EVENTS.name} ({EVENTS.column_list()}) "
        f"SELECT {EVENTS.values(p, name)} FROM {once_per_row_of}"
    )


def event_values(name: str, event: Event) -> dict[str, Any]:
    return EVENTS.named(name, _row(event))


EVENTS.check_matches(Event)


def _row(event: Event) -> dict[str, Any]:
    return EVENTS.row(event)


def _event(row: asyncpg.Record) -> Event:
    return EVENTS.record(Event, row)


_INSERT_PARAMS = Params()
_INSERT = (
    f"INSERT INTO {EVENTS.name} ({EVENTS.column_list()}) "
    f"VALUES ({EVENTS.values(_INSERT_PARAMS, 'event')})"
)
# Many events in ONE statement (a settlement partition writes thousands): one trigger call and
# one round trip instead of one INSERT per event; `seq` follows the order given.
_INSERT_MANY = (
    f"INSERT INTO {EVENTS.name} ({EVENTS.column_list()}) "
    "SELECT u.id, u.merchant_id, u.type, u.object_id, u.data::jsonb, u.created_at "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
    "$6::timestamptz[]) WITH ORDINALITY AS u(id, merchant_id, type, object_id, data, "
    "created_at, i) ORDER BY u.i"
)
_SELECT = f"SELECT {EVENTS.column_list()} FROM {EVENTS.name}"
_GET_PARAMS = Params()
_GET = (
    f"{_SELECT} WHERE id = {_GET_PARAMS('id')} "
    f"AND ({_GET_PARAMS('merchant_id', 'text')} IS NULL "
    f"OR merchant_id = {_GET_PARAMS('merchant_id')})"
)


class PgEventStore:
    async def insert(self, tx: Transaction, events: Sequence[Event]) -> None:
        if len(events) == 1:
            await conn_of(tx).execute(
                _INSERT, *_INSERT_PARAMS.args(event_values("event", events[0]))
            )
        elif events:
            rows = [_row(e) for e in events]
            await conn_of(tx).execute(
                _INSERT_MANY,
                *(
                    [json.dumps(r[c]) if c == "data" else r[c] for r in rows]
                    for c in EVENTS.column_names
                ),
            )

    async def get(
        self, tx: Transaction, event_id: str, *, merchant_id: str | None = None
    ) -> Event | None:
        row = await conn_of(tx).fetchrow(
            _GET, *_GET_PARAMS.args(id=event_id, merchant_id=merchant_id)
        )
        return None if row is None else _event(row)

    async def list(
        self,
        tx: Transaction,
        merchant_id: str | None,
        page: PageRequest,
        filters: Mapping[str, Any],
    ) -> Page[Event]:
        where: list[str] = []
        args: list[Any] = []
        if merchant_id is not None:
            args.append(merchant_id)
            where.append("merchant_id = $1")
        add_filters(where, args, filters, equal={"type": "type", "object_id": "object_id"})
        # By sequence, never by id: ids are drawn before the transaction, `seq` as it writes.
        return await fetch_page(
            conn_of(tx),
            select=_SELECT,
            where=where,
            args=args,
            page=page,
            row_to=_event,
            id_column="seq",
            position_of=f"(SELECT seq FROM {EVENTS.name} WHERE id = {{}})",
        )
