"""Group commit (decision 0912): concurrent statements share a commit, each caller gets its
result only once that commit is made, and a failing statement fails alone."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from clearport.db.database import Database, conn_of
from clearport.db.group_commit import GroupCommit
from tests.support import pg


async def _with_group(database_url: str, **options: float) -> tuple[Database, GroupCommit]:
    db = Database(database_url, min_size=1, max_size=4)
    await db.open()
    return db, GroupCommit(
        db, max_wait_s=options.get("max_wait_s", 0.05), max_batch=int(options.get("batch", 64))
    )


def test_concurrent_statements_share_commits_and_answer_after_them(database_url: str) -> None:
    with pg(database_url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS group_commit_probe (n integer PRIMARY KEY)")
        conn.execute("TRUNCATE group_commit_probe")

    async def scenario() -> tuple[list[int], int, list[int]]:
        db, group = await _with_group(database_url)
        seen_committed: list[int] = []
        watcher = await asyncpg.connect(database_url)
        watching = asyncio.Lock()

        async def one(n: int) -> int:
            async with group.block() as tx:
                value = await conn_of(tx).fetchval(
                    "INSERT INTO group_commit_probe VALUES ($1) RETURNING n", n
                )
            # Answered: another session must already see the row (it is committed).
            async with watching:
                visible = await watcher.fetchval(
                    "SELECT count(*) FROM group_commit_probe WHERE n = $1", n
                )
            seen_committed.append(int(visible))
            return int(value)

        try:
            results = await asyncio.gather(*(one(n) for n in range(20)))
            return list(results), group.batches, seen_committed
        finally:
            await group.close()
            await watcher.close()
            await db.close()

    results, batches, seen = asyncio.run(scenario())
    assert results == list(range(20))
    assert seen == [1] * 20
    assert batches < 20  # shared: fewer commits than statements


def test_a_failing_statement_fails_alone(database_url: str) -> None:
    with pg(database_url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS group_commit_probe (n integer PRIMARY KEY)")
        conn.execute("TRUNCATE group_commit_probe")
        conn.execute("INSERT INTO group_commit_probe VALUES (5)")

    async def scenario() -> list[object]:
        db, group = await _with_group(database_url)

        async def one(n: int) -> object:
            async with group.block() as tx:
                return await conn_of(tx).execute("INSERT INTO group_commit_probe VALUES ($1)", n)

        try:
            return list(await asyncio.gather(*(one(n) for n in range(10)), return_exceptions=True))
        finally:
            await group.close()
            await db.close()

    outcomes = asyncio.run(scenario())
    assert isinstance(outcomes[5], asyncpg.UniqueViolationError)
    assert all(o == "INSERT 0 1" for i, o in enumerate(outcomes) if i != 5)
    with pg(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM group_commit_probe").fetchone()
    assert row == (10,)


@pytest.mark.parametrize("wait_s", [0.0])
def test_zero_wait_is_plain_autocommit(database_url: str, wait_s: float) -> None:
    async def scenario() -> tuple[int, bool]:
        db, group = await _with_group(database_url, max_wait_s=wait_s)
        try:
            async with group.block() as tx:
                value = await conn_of(tx).fetchval("SELECT 41 + 1")
            return int(value), group.enabled
        finally:
            await db.close()

    assert asyncio.run(scenario()) == (42, False)
