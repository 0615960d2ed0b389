"""The asyncpg pool and the unit of work built on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
import orjson

from clearport.core.uow import Transaction


@dataclass(slots=True)
class PgTransaction:
    """An open transaction on one pooled connection."""

    conn: asyncpg.Connection
    # Run once the transaction has committed (never after a rollback): this process's own
    # cache evictions for what the transaction announced (db/invalidation.py).
    after_commit: list[Callable[[], object]] = field(default_factory=list)

    def on_commit(self, action: Callable[[], object]) -> None:
        """`action` after the commit; at once when this block commits statement by statement."""
        if self.conn.is_in_transaction():
            self.after_commit.append(action)
        else:
            action()


def conn_of(tx: Transaction) -> asyncpg.Connection:
    """The connection behind a Transaction handed out by `Database`."""
    return cast(PgTransaction, tx).conn


async def _keep_connection(conn: asyncpg.Connection) -> None:
    """Pool release hook: nothing beyond asyncpg's own rollback of an open transaction.

    asyncpg's default reset sends `RESET ALL; UNLISTEN *; pg_advisory_unlock_all() …` on every
    release: one extra round trip per request per acquisition. Clearport keeps no session state
    (advisory locks are transaction-scoped, settings are `SET LOCAL`, nothing LISTENs on pooled
    connections), so there is nothing to reset.
    """


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("jsonb", "json"):
        await conn.set_type_codec(
            name, encoder=_json_text, decoder=orjson.loads, schema="pg_catalog"
        )


class Database:
    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 20) -> None:
        self._url = url
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    @property
    def url(self) -> str:
        return self._url

    async def open(self) -> None:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=self._min_size,
                max_size=self._max_size,
                init=_init_connection,
                reset=_keep_connection,
                command_timeout=60,
            )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def terminate(self) -> None:
        """Drop every connection at once, as a process that dies would (the simulation's crash);
        the server rolls back what they had begun and drops their temporary tables."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not open")
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self.pool.acquire() as conn:
            tx = PgTransaction(cast(asyncpg.Connection, conn))
            async with conn.transaction():
                yield tx
            for action in tx.after_commit:
                action()

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Transaction]:
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield PgTransaction(cast(asyncpg.Connection, conn))

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[Transaction]:
        """A connection without BEGIN/COMMIT: each statement commits on its own. For single
        reads and single-statement writes, it saves two round trips."""
        async with self.pool.acquire() as conn:
            yield PgTransaction(cast(asyncpg.Connection, conn))

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(query, *args)
