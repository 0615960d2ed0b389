"""The simulated processor's own records: a schema of its own in PostgreSQL, never Clearport's
tables, so a test can compare what the processor did with what Clearport recorded, also after
the simulator process was killed (a record is written before its answer is sent).

One row per reference the host was sent (our attempt ids): what it was, what the host answered,
and for authorizations and sales what became of them (captured, voided, reversed). A reversal
that arrives before its original leaves a `tombstone` row under the original's reference, so the
original is refused if it ever arrives. Card numbers are never stored: BIN and last four only.

The simulator's sessions commit with `synchronous_commit = off`: a killed simulator process
loses nothing (PostgreSQL has the commit), only a crash of PostgreSQL itself could lose the last
few milliseconds, which no test of a simulator needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg

SCHEMA_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Serialises the DDL of simulators starting at once against one database.
_DDL_LOCK = 0x434C5053494D  # "CLPSIM"

if TYPE_CHECKING:
    # A pooled connection, as the pool hands it out.
    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

COLUMNS = (
    "reference, host, kind, original, amount, currency, card_bin, card_last4, response_code, "
    "approval_code, network_ref, state, captured, refunded, answered, details, created_at"
)


@dataclass(slots=True)
class Record:
    reference: str
    host: str
    kind: str  # authorize | sale | capture | void | refund | reverse | tombstone
    original: str | None
    amount: int | None
    currency: str | None
    response_code: str
    state: str
    card_bin: str | None = None
    card_last4: str | None = None
    approval_code: str | None = None
    network_ref: str | None = None
    captured: int = 0
    refunded: int = 0
    answered: bool = True
    details: dict[str, Any] = field(default_factory=dict)


def _record(row: asyncpg.Record) -> Record:
    details = row["details"]
    return Record(
        reference=row["reference"],
        host=row["host"],
        kind=row["kind"],
        original=row["original"],
        amount=row["amount"],
        currency=row["currency"],
        response_code=row["response_code"],
        state=row["state"],
        card_bin=row["card_bin"],
        card_last4=row["card_last4"],
        approval_code=row["approval_code"],
        network_ref=row["network_ref"],
        captured=row["captured"],
        refunded=row["refunded"],
        answered=row["answered"],
        details=json.loads(details) if isinstance(details, str) else dict(details),
    )


class Records:
    """The records of one simulator schema."""

    def __init__(self, url: str, schema: str) -> None:
        if not SCHEMA_PATTERN.match(schema):
            raise ValueError("a simulator schema is a lower-case SQL identifier")
        self._url = url
        self.schema = schema
        self._table = f"{schema}.transactions"
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self._url,
            min_size=1,
            max_size=10,
            server_settings={
                "synchronous_commit": "off",
                "application_name": f"clearport-{self.schema}",
            },
        )
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            await conn.execute(
                f"""
CREATE TABLE IF NOT EXISTS {self._table} (
    reference     text PRIMARY KEY,
    host          text NOT NULL,
    kind          text NOT NULL,
    original      text,
    amount        bigint,
    currency      text,
    card_bin      text,
    card_last4    text,
    response_code text NOT NULL,
    approval_code text,
    network_ref   text,
    state         text NOT NULL,
    captured      bigint NOT NULL DEFAULT 0,
    refunded      bigint NOT NULL DEFAULT 0,
    answered      boolean NOT NULL DEFAULT true,
    details       jsonb NOT NULL DEFAULT '{{}}',
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
)"""
            )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the simulator's records are not open")
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def get(self, conn: Connection, reference: str, *, lock: bool) -> Record | None:
        row = await conn.fetchrow(
            f"SELECT {COLUMNS} FROM {self._table} WHERE reference = $1"
            + (" FOR UPDATE" if lock else ""),
            reference,
        )
        return None if row is None else _record(row)

    async def find(self, reference: str) -> Record | None:
        async with self.pool.acquire() as conn:
            return await self.get(conn, reference, lock=False)

    async def insert(self, conn: Connection, record: Record) -> bool:
        """False if the reference is on record already."""
        inserted = await conn.fetchval(
            f"INSERT INTO {self._table} (reference, host, kind, original, amount, currency, "
            "card_bin, card_last4, response_code, approval_code, network_ref, state, captured, "
            "refunded, answered, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
            "$12, $13, $14, $15, $16::jsonb) ON CONFLICT (reference) DO NOTHING RETURNING true",
            record.reference,
            record.host,
            record.kind,
            record.original,
            record.amount,
            record.currency,
            record.card_bin,
            record.card_last4,
            record.response_code,
            record.approval_code,
            record.network_ref,
            record.state,
            record.captured,
            record.refunded,
            record.answered,
            json.dumps(record.details),
        )
        return bool(inserted)

    async def update(self, conn: Connection, record: Record) -> None:
        await conn.execute(
            f"UPDATE {self._table} SET state = $2, captured = $3, refunded = $4 "
            "WHERE reference = $1",
            record.reference,
            record.state,
            record.captured,
            record.refunded,
        )

    async def insert_alone(self, record: Record) -> Record:
        """Insert `record` in a statement of its own; the record already there if any."""
        async with self.pool.acquire() as conn:
            if await self.insert(conn, record):
                return record
            existing = await self.get(conn, record.reference, lock=False)
        if existing is None:  # pragma: no cover - a row is never deleted
            raise RuntimeError("a conflicting simulator record vanished")
        return existing
