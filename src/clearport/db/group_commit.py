"""Group commit: concurrent single-statement writes of one process share a transaction and a
commit (decision 0912).

A request hands its statement to `GroupCommit` and waits. The first statement of a batch
starts a timer of `max_wait_s`; when it fires, or when `max_batch` statements wait, the batch
runs on one pooled connection inside one transaction, statement after statement, and commits;
only then does each statement's caller get its result. So an answer never leaves before its
own rows are durable, and N requests pay one commit (one WAL flush) instead of N.

If any statement of a batch fails, the batch's transaction rolls back and each statement runs
again on its own (autocommit), so a failure is its own statement's alone, as without grouping.
A statement grouped here must be one that may commit on its own, like every statement of an
`autocommit()` block: grouping changes when it commits, never what it commits with.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg

from clearport.core.uow import Transaction
from clearport.db.database import Database, PgTransaction


def _new_future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


@dataclass(slots=True)
class _Statement:
    method: str  # an asyncpg.Connection method: fetchval, fetchrow, fetch, execute
    query: str
    args: tuple[Any, ...]
    result: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    def __init__(self, db: Database, *, max_wait_s: float, max_batch: int) -> None:
        self._db = db
        self._max_wait_s = max_wait_s
        self._max_batch = max_batch
        self._waiting: list[_Statement] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.batches = 0  # commits made, for tests and the bench
        self.statements = 0

    @property
    def enabled(self) -> bool:
        return self._max_wait_s > 0 and self._max_batch > 1

    @asynccontextmanager
    async def block(self) -> AsyncIterator[Transaction]:
        """Like `Database.autocommit()` (each statement commits on its own), except that a
        statement may share its commit with other requests' statements."""
        if not self.enabled:
            async with self._db.autocommit() as tx:
                yield tx
            return
        yield PgTransaction(cast(asyncpg.Connection, _GroupedConnection(self)))

    async def run(self, method: str, query: str, args: tuple[Any, ...]) -> Any:
        statement = _Statement(method, query, args)
        self._waiting.append(statement)
        if len(self._waiting) >= self._max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._max_wait_s, self._flush)
        return await statement.result

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, []
        if not batch:
            return
        task = asyncio.create_task(self._commit(batch), name="group-commit")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _commit(self, batch: list[_Statement]) -> None:
        try:
            async with self._db.pool.acquire() as conn:
                try:
                    results = []
                    async with conn.transaction():
                        for statement in batch:
                            method = getattr(conn, statement.method)
                            results.append(await method(statement.query, *statement.args))
                except Exception:
                    # One statement failed (or the commit did): each runs again on its own.
                    await self._one_by_one(conn, batch)
                    return
            self.batches += 1
            self.statements += len(batch)
            for statement, result in zip(batch, results, strict=True):
                if not statement.result.done():
                    statement.result.set_result(result)
        except BaseException as exc:  # no connection, or cancelled at shutdown
            for statement in batch:
                if not statement.result.done():
                    statement.result.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    async def _one_by_one(self, conn: Any, batch: list[_Statement]) -> None:
        for statement in batch:
            try:
                result = await getattr(conn, statement.method)(statement.query, *statement.args)
            except Exception as exc:
                if not statement.result.done():
                    statement.result.set_exception(exc)
                continue
            self.batches += 1
            self.statements += 1
            if not statement.result.done():
                statement.result.set_result(result)

    async def close(self) -> None:
        self._flush()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


class _GroupedConnection:
    """What a grouped block's statements are sent to: each goes to the next batch."""

    def __init__(self, group: GroupCommit) -> None:
        self._group = group

    def is_in_transaction(self) -> bool:
        return False  # every statement has committed by the time it returns

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._group.run("fetchval", query, args)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await self._group.run("fetchrow", query, args)

    async def fetch(self, query: str, *args: Any) -> Any:
        return await self._group.run("fetch", query, args)

    async def execute(self, query: str, *args: Any) -> Any:
        return await self._group.run("execute", query, args)
