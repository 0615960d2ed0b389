"""The transaction log (`txlog`) in PostgreSQL: appending entries, and the step other stores
splice into a statement of their own (the payment store writes a state change and its entry in
one statement, docs/decisions/0300). Then the rows of txlog and audit_events and their seals
(chain_seals), read for sealing and verification: the sealed tables are never updated."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from clearport.core.uow import Transaction
from clearport.db.database import Database, conn_of
from clearport.db.statements import Params, Table
from clearport.txlog.domain import GENESIS, SealedRow, TxlogEntry, canonical

TXLOG = Table(
    "txlog",
    (
        ("object_type", "text"),
        ("object_id", "text"),
        ("payment_id", "text"),
        ("merchant_id", "text"),
        ("from_status", "text"),
        ("to_status", "text"),
        ("amount", "bigint"),
        ("currency", "text"),
        ("actor", "text"),
        ("connector_result", "jsonb"),
        ("occurred_at", "timestamptz"),
    ),
)


def append_entry_step(p: Params, name: str, *, once_per_row_of: str) -> str:
    """`INSERT` the entry named `name` once per row of the enclosing statement's CTE
    `once_per_row_of`: not at all when that step changed nothing. Values: `entry_values`."""
    return (
        f"INSERT INTO {TXLOG.name} ({TXLOG.column_list()}) "
        f"SELECT {TXLOG.values(p, name)} FROM {once_per_row_of}"
    )


def entry_values(name: str, entry: TxlogEntry) -> dict[str, Any]:
    return TXLOG.named(
        name,
        {
            "object_type": entry.object_type,
            "object_id": entry.object_id,
            "payment_id": entry.payment_id,
            "merchant_id": entry.merchant_id,
            "from_status": entry.from_status,
            "to_status": entry.to_status,
            "amount": entry.amount,
            "currency": entry.currency,
            "actor": entry.actor,
            "connector_result": entry.connector_result,
            "occurred_at": entry.occurred_at,
        },
    )


_APPEND_PARAMS = Params()
_APPEND = (
    f"INSERT INTO {TXLOG.name} ({TXLOG.column_list()}) "
    f"VALUES ({TXLOG.values(_APPEND_PARAMS, 'entry')})"
)


class PgTxlogStore:
    async def append(self, tx: Transaction, entries: Sequence[TxlogEntry]) -> None:
        rows = [_APPEND_PARAMS.args(entry_values("entry", e)) for e in entries]
        if len(rows) == 1:
            await conn_of(tx).execute(_APPEND, *rows[0])
        elif rows:
            await conn_of(tx).executemany(_APPEND, rows)


_SOURCES: dict[str, tuple[str, str]] = {
    "txlog": (TXLOG.name, f"seq, {TXLOG.column_list()}"),
    "audit": (
        "audit_events",
        "seq, id, actor, event_type, occurred_at, outcome, origin_ip, resource, details",
    ),
}
# Advisory lock keys: one sealer per chain at a time.
_LOCK_KEYS = {"txlog": 0x7C1E_0001, "audit": 0x7C1E_0002}
# How many seals near the head are considered when finding rows that committed late.
MAX_LATE_SEALS = 100_000


def _text(row: asyncpg.Record) -> str:
    return canonical(dict(row))


class PgChainStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def try_lock(self, tx: Transaction, chain: str) -> bool:
        return bool(
            await conn_of(tx).fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_KEYS[chain])
        )

    async def head(self, tx: Transaction, chain: str) -> tuple[int, bytes]:
        row = await conn_of(tx).fetchrow(
            "SELECT seq, hash FROM chain_seals WHERE chain = $1 ORDER BY seq DESC LIMIT 1", chain
        )
        return (0, GENESIS) if row is None else (int(row["seq"]), bytes(row["hash"]))

    async def unsealed(
        self, tx: Transaction, chain: str, lookback_s: int, limit: int
    ) -> list[tuple[int, str]]:
        # Sequence numbers are handed out before commit, so a slow transaction can commit a row
        # below rows already sealed. Everything above the highest source_seq sealed more than
        # `lookback_s` ago is therefore re-checked against the seals (decision 0302).
        table, columns = _SOURCES[chain]
        conn = conn_of(tx)
        floor = await conn.fetchval(
            "SELECT coalesce(max(source_seq), 0) FROM (SELECT source_seq FROM chain_seals "
            "WHERE chain = $1 AND sealed_at < now() - make_interval(secs => $2) "
            "ORDER BY seq DESC LIMIT $3) recent",
            chain,
            float(lookback_s),
            MAX_LATE_SEALS,
        )
        rows = await conn.fetch(
            f"SELECT {columns} FROM {table} t WHERE t.seq > $1 AND NOT EXISTS "
            "(SELECT 1 FROM chain_seals s WHERE s.chain = $2 AND s.source_seq = t.seq) "
            "ORDER BY t.seq LIMIT $3",
            floor,
            chain,
            limit,
        )
        return [(int(r["seq"]), _text(r)) for r in rows]

    async def insert_seals(
        self, tx: Transaction, chain: str, seals: Sequence[tuple[int, int, bytes]]
    ) -> None:
        await conn_of(tx).executemany(
            "INSERT INTO chain_seals (chain, seq, source_seq, hash) VALUES ($1, $2, $3, $4)",
            [(chain, seq, source_seq, digest) for seq, source_seq, digest in seals],
        )

    async def walk(self, chain: str) -> AsyncIterator[SealedRow]:
        table, columns = _SOURCES[chain]
        prefixed = ", ".join(f"t.{c.strip()}" for c in columns.split(","))
        async with self._db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            cursor: Any = conn.cursor(
                f"SELECT s.seq AS chain_seq, s.source_seq AS chain_source, s.hash AS chain_hash, "
                f"{prefixed} FROM chain_seals s LEFT JOIN {table} t ON t.seq = s.source_seq "
                "WHERE s.chain = $1 ORDER BY s.seq",
                chain,
                prefetch=1000,
            )
            async for row in cursor:
                values = dict(row)
                seq = int(values.pop("chain_seq"))
                source = int(values.pop("chain_source"))
                digest = bytes(values.pop("chain_hash"))
                text = None if values["seq"] is None else canonical(values)
                yield SealedRow(seq, source, digest, text)
