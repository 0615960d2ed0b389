"""The transaction log (`txlog`) in PostgreSQL: appending entries, and the step other stores
splice into a statement of their own (the payment store writes a state change and its entry in
one statement, docs/decisions/0300). Then the rows of txlog and audit_events and their seals
(chain_seals), read for sealing and verification: the sealed tables are never updated."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from clearport.core.errors import present
from clearport.core.uow import Transaction
from clearport.db.database import Database, conn_of
from clearport.db.statements import Params, Table
from clearport.txlog.domain import (
    GENESIS,
    Checkpoint,
    SealedRow,
    TxlogEntry,
    TxlogPlace,
    canonical,
)
from clearport.txlog.ports import ChainRead

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


# By txlog_object (object_id, seq), the seal by (chain, source_seq), the checkpoint by its key.
_PLACES = """
SELECT t.seq, t.object_id, t.from_status, t.to_status, t.occurred_at, s.seq AS chain_seq, s.hash,
       c.seq AS c_seq, c.head AS c_head, c.algorithm AS c_algorithm, c.key_id AS c_key_id,
       c.signature AS c_signature
  FROM txlog t
  LEFT JOIN chain_seals s ON s.chain = 'txlog' AND s.source_seq = t.seq
  LEFT JOIN LATERAL (
      SELECT * FROM chain_checkpoints k WHERE k.chain = 'txlog' AND k.seq >= s.seq
      ORDER BY k.seq LIMIT 1) c ON true
 WHERE t.object_id = ANY($1::text[])
 ORDER BY t.seq LIMIT $2
"""


class PgChainStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def places(self, object_ids: Sequence[str], limit: int) -> list[TxlogPlace]:
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(_PLACES, list(object_ids), limit)
        return [
            TxlogPlace(
                txlog_seq=int(r["seq"]),
                object_id=r["object_id"],
                from_status=r["from_status"],
                to_status=r["to_status"],
                occurred_at=r["occurred_at"],
                chain_seq=r["chain_seq"],
                chain_hash=None if r["hash"] is None else bytes(r["hash"]),
                checkpoint=None if r["c_seq"] is None else _checkpoint_of(r),
            )
            for r in rows
        ]

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
        floor = await self._floor(conn, chain, lookback_s)
        rows = await conn.fetch(
            f"SELECT {columns} FROM {table} t WHERE t.seq > $1 AND NOT EXISTS "
            "(SELECT 1 FROM chain_seals s WHERE s.chain = $2 AND s.source_seq = t.seq) "
            "ORDER BY t.seq LIMIT $3",
            floor,
            chain,
            limit,
        )
        return [(int(r["seq"]), _text(r)) for r in rows]

    @staticmethod
    async def _floor(conn: Any, chain: str, lookback_s: int) -> int:
        return int(
            await conn.fetchval(
                "SELECT coalesce(max(source_seq), 0) FROM (SELECT source_seq FROM chain_seals "
                "WHERE chain = $1 AND sealed_at < now() - make_interval(secs => $2) "
                "ORDER BY seq DESC LIMIT $3) recent",
                chain,
                float(lookback_s),
                MAX_LATE_SEALS,
            )
        )

    async def insert_seals(
        self, tx: Transaction, chain: str, seals: Sequence[tuple[int, int, bytes]]
    ) -> None:
        await conn_of(tx).executemany(
            "INSERT INTO chain_seals (chain, seq, source_seq, hash) VALUES ($1, $2, $3, $4)",
            [(chain, seq, source_seq, digest) for seq, source_seq, digest in seals],
        )

    @staticmethod
    def _sealed_rows_sql(chain: str) -> str:
        table, columns = _SOURCES[chain]
        prefixed = ", ".join(f"t.{c.strip()}" for c in columns.split(","))
        return (
            f"SELECT s.seq AS chain_seq, s.source_seq AS chain_source, s.hash AS chain_hash, "
            f"{prefixed} FROM chain_seals s LEFT JOIN {table} t ON t.seq = s.source_seq "
            "WHERE s.chain = $1 AND s.seq > $2 ORDER BY s.seq"
        )

    async def walk(self, chain: str) -> AsyncIterator[SealedRow]:
        async with self._db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            cursor: Any = conn.cursor(self._sealed_rows_sql(chain), chain, 0, prefetch=1000)
            async for row in cursor:
                yield _sealed_row(row)

    async def read(self, chain: str, lookback_s: int) -> ChainRead:
        table, _ = _SOURCES[chain]
        async with self._db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            cursor: Any = conn.cursor(self._sealed_rows_sql(chain), chain, 0, prefetch=1000)
            rows = [_sealed_row(row) async for row in cursor]
            checkpoints = [
                _checkpoint(r)
                for r in await conn.fetch(
                    "SELECT * FROM chain_checkpoints WHERE chain = $1 ORDER BY seq", chain
                )
            ]
            floor = await self._floor(conn, chain, lookback_s)
            unsealed = await conn.fetchval(
                f"SELECT count(*) FROM {table} t WHERE t.seq > $1 AND NOT EXISTS "
                "(SELECT 1 FROM chain_seals s WHERE s.chain = $2 AND s.source_seq = t.seq)",
                floor,
                chain,
            )
        return ChainRead(rows, checkpoints, int(unsealed))

    async def sealed_after(self, chain: str, seq: int, limit: int) -> list[SealedRow]:
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(self._sealed_rows_sql(chain) + " LIMIT $3", chain, seq, limit)
        return [_sealed_row(r) for r in rows]

    # -- checkpoints --

    async def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        async with self._db.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO chain_checkpoints (chain, seq, head, algorithm, key_id, signature) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (chain, seq) DO NOTHING",
                checkpoint.chain,
                checkpoint.seq,
                checkpoint.head,
                checkpoint.algorithm,
                checkpoint.key_id,
                checkpoint.signature,
            )

    async def checkpoint_due(self, chain: str, interval_s: float) -> tuple[int, bytes] | None:
        async with self._db.pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT s.seq, s.hash FROM (SELECT seq, hash FROM chain_seals WHERE chain = $1
                    ORDER BY seq DESC LIMIT 1) s
                    LEFT JOIN LATERAL (SELECT seq, created_at FROM chain_checkpoints
                         WHERE chain = $1 ORDER BY seq DESC LIMIT 1) c ON true
                   WHERE c.seq IS NULL
                      OR (c.seq < s.seq AND c.created_at <= now() - make_interval(secs => $2))""",
                chain,
                interval_s,
            )
        return None if row is None else (int(row["seq"]), bytes(row["hash"]))

    async def checkpoints_after(self, chain: str, seq: int, limit: int) -> list[Checkpoint]:
        async with self._db.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM chain_checkpoints WHERE chain = $1 AND seq > $2 "
                "ORDER BY seq LIMIT $3",
                chain,
                seq,
                limit,
            )
        return [_checkpoint(r) for r in rows]


def _sealed_row(row: asyncpg.Record) -> SealedRow:
    values = dict(row)
    seq = int(values.pop("chain_seq"))
    source = int(values.pop("chain_source"))
    digest = bytes(values.pop("chain_hash"))
    text = None if values["seq"] is None else canonical(values)
    return SealedRow(seq, source, digest, text)


def _checkpoint(row: asyncpg.Record) -> Checkpoint:
    return Checkpoint(
        chain=row["chain"],
        seq=int(row["seq"]),
        head=bytes(row["head"]),
        algorithm=row["algorithm"],
        key_id=row["key_id"],
        signature=bytes(row["signature"]),
    )


def _checkpoint_of(row: asyncpg.Record) -> Checkpoint:
    return Checkpoint(
        chain="txlog",
        seq=int(row["c_seq"]),
        head=bytes(row["c_head"]),
        algorithm=row["c_algorithm"],
        key_id=row["c_key_id"],
        signature=bytes(row["c_signature"]),
    )


class PgChainCopies:
    """`chain_copies`: progress and a lease per copy target. The lease is a row's columns, not a
    database lock: nothing is held while the copy talks to S3 or DynamoDB."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def through(self, target: str) -> int:
        value = await self._db.fetchval(
            "SELECT through FROM chain_copies WHERE target = $1", target
        )
        return int(value or 0)

    async def lease(self, target: str, owner: str, ttl_s: float) -> int | None:
        async with self._db.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO chain_copies (target) VALUES ($1) ON CONFLICT DO NOTHING", target
            )
            value = await conn.fetchval(
                """UPDATE chain_copies SET lease_owner = $2,
                          lease_until = now() + make_interval(secs => $3)
                    WHERE target = $1
                      AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < now())
                RETURNING through""",
                target,
                owner,
                ttl_s,
            )
        return None if value is None else int(value)

    async def release(self, target: str, owner: str, through: int) -> None:
        async with self._db.pool.acquire() as conn:
            await conn.execute(
                """UPDATE chain_copies SET through = greatest(through, $3), updated_at = now(),
                          lease_owner = CASE WHEN lease_owner = $2 THEN NULL ELSE lease_owner END,
                          lease_until = CASE WHEN lease_owner = $2 THEN NULL ELSE lease_until END
                    WHERE target = $1""",
                target,
                owner,
                through,
            )

    async def lag(self, target: str, chain: str) -> tuple[int, float]:
        async with self._db.pool.acquire() as conn:
            row = await conn.fetchrow(
                """WITH c AS (SELECT coalesce((SELECT through FROM chain_copies
                                               WHERE target = $1), 0) AS through)
                   SELECT coalesce((SELECT max(seq) FROM chain_seals WHERE chain = $2), 0)
                              - c.through AS behind,
                          coalesce(extract(epoch FROM now() - (SELECT sealed_at FROM chain_seals
                              WHERE chain = $2 AND seq = c.through + 1)), 0) AS seconds
                     FROM c""",
                target,
                chain,
            )
        found = present(row, "one row from a SELECT without FROM filters")
        return max(int(found["behind"]), 0), float(found["seconds"])
