"""A run staged in shares and settled several partitions at once (decision 0914), against real
PostgreSQL: each source settled once with shares and partitions in flight together; a crash
between shares leaves a run that no partition can settle until whoever comes next has staged
the rest; shares staged on a server that has restarted since (UNLOGGED rows gone) are staged
again from the claims."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import Any

import pytest

from clearport.core.uow import Transaction
from clearport.db.database import Database, conn_of
from clearport.settlement.domain import SettlementRun
from clearport.settlement.store import PgSettlementStore
from tests.integration.test_settlement_run import (
    BLENDED,
    ORIGIN,
    SYSTEM_CLI,
    TODAY,
    YESTERDAY,
    Env,
    add_merchant,
    capture,
    db_now,
    env,
    make_service,
    q,
    refund,
    run,
)
from tests.ledger_support import assert_zero_sum

__all__ = ["env"]  # the fixture, used by name

SHARES = 3


class Crash(Exception):
    pass


class CrashingShare(PgSettlementStore):
    """Stages share 1's rows, claims and counts, waits for the other shares to commit, then
    fails before its own commit."""

    async def stage_share(self, tx: Transaction, run: SettlementRun, share: int) -> bool:
        staged = await super().stage_share(tx, run, share)
        if share == 1:
            conn = conn_of(tx)
            for _ in range(200):  # read committed: each look sees the others' commits
                others = await conn.fetchval(
                    "SELECT count(*) FROM settlement_stage_shares WHERE run_id = $1 "
                    "AND share <> 1 AND done_at IS NOT NULL",
                    run.id,
                )
                if others == SHARES - 1:
                    break
                await asyncio.sleep(0.05)
            raise Crash
        return staged


async def _sources(env: Env, merchants: int = 9) -> tuple[int, int]:
    """Captures over `merchants` merchants, and a refund of every third: (count, gross)."""
    count, gross = 0, 0
    for i in range(merchants):
        m = await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
        for j in range(3):
            amount = 1_000 + 10 * i + j
            payment = await capture(env, m, amount, "usd", "visa")
            count, gross = count + 1, gross + amount
            if j == 0 and i % 3 == 0:
                await refund(env, m, payment, 100, "usd")
                count, gross = count + 1, gross - 100
    return count, gross


def _settled_once(env: Env, count: int, gross: int) -> None:
    assert q(env.url, "SELECT count(*), count(DISTINCT source_id), sum(gross) "
             "FROM settlement_items") == [(count, count, gross)]  # fmt: skip
    assert q(env.url, "SELECT count(*) FROM settlement_claims") == [(count,)]
    assert q(env.url, "SELECT count(*), sum(staged) FROM settlement_partitions") == [(4, count)]
    assert_zero_sum(env.url)


def test_shares_and_partitions_at_once_settle_each_source_once(env: Env) -> None:
    async def scenario() -> tuple[int, int, SettlementRun]:
        count, gross = await _sources(env)
        cutoff = await db_now(env)
        work = Database(env.url, min_size=0, max_size=SHARES)
        await work.open()
        try:
            service = make_service(env.db, env.files, env.destinations, workers=SHARES, work=work)
            done = await service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        finally:
            await work.close()
        return count, gross, done

    count, gross, done = run(scenario())
    assert done.status == "completed", done.error
    assert done.stage_shares == SHARES and done.stats["staged"] == count
    _settled_once(env, count, gross)
    # Every share staged once, and their counts are the partitions' (the invariants held).
    assert q(env.url, "SELECT count(*) FILTER (WHERE done_at IS NOT NULL) "
             "FROM settlement_stage_shares") == [(SHARES,)]  # fmt: skip
    assert q(env.url, "SELECT sum(staged), sum(staged_gross) FROM settlement_share_counts") == [
        (count, gross)
    ]


def _crash_in_staging(env: Env) -> tuple[int, int, SettlementRun]:
    """Start a run whose share 1 crashes; the run exists, not staged, its partitions not
    settleable."""

    async def scenario() -> tuple[int, int, SettlementRun]:
        count, gross = await _sources(env)
        cutoff = await db_now(env)
        crashing = make_service(env.db, env.files, env.destinations, workers=SHARES,
                                store=CrashingShare())  # fmt: skip
        with pytest.raises(Crash):
            await crashing.start(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        found = await env.service.run_for_date(YESTERDAY)
        assert found is not None
        return count, gross, found

    count, gross, found = run(scenario())
    assert found.staged_at is None and found.stage_shares == SHARES
    # Share 1 rolled back whole: no claim, count or staged row of it.
    assert q(env.url, "SELECT done_at IS NULL FROM settlement_stage_shares WHERE share = 1") == [
        (True,)
    ]
    assert q(env.url, "SELECT count(*) FROM settlement_share_counts WHERE share = 1") == [(0,)]
    claimed = q(env.url, "SELECT count(*) FROM settlement_claims")[0][0]
    assert (
        claimed == q(env.url, "SELECT coalesce(sum(staged), 0) FROM settlement_share_counts")[0][0]
    )
    assert 0 < claimed < count
    assert q(env.url, "SELECT count(*) FROM settlement_stage_shares WHERE done_at IS NOT NULL") == [
        (SHARES - 1,)
    ]
    # No partition is claimed before the staging is finished.
    assert q(env.url, "SELECT count(*) FROM settlement_items") == [(0,)]
    return count, gross, found


def test_a_crash_between_shares_is_staged_to_the_end_by_the_next_settle(env: Env) -> None:
    count, gross, found = _crash_in_staging(env)
    # The staging leaves are the run's own: autovacuum leaves them alone (the run ANALYZEs).
    assert q(env.url, "SELECT count(*), count(*) FILTER (WHERE 'autovacuum_enabled=false' = "
             "ANY(reloptions)) FROM pg_class WHERE relname LIKE %s",
             f"settlement_sources_{found.id.lower()}_%") == [(4, 4)]  # fmt: skip

    async def resume() -> Any:
        # Another worker count here: the run keeps its own shares.
        return await make_service(env.db, env.files, env.destinations, workers=1).settle(
            SYSTEM_CLI, ORIGIN, YESTERDAY
        )

    done = run(resume())
    assert done.id == found.id and done.status == "completed", done.error
    assert done.stats["staged"] == count
    _settled_once(env, count, gross)
    assert q(env.url, "SELECT count(*) FROM settlement_runs") == [(1,)]


def test_shares_staged_before_a_server_restart_are_staged_again_from_the_claims(
    env: Env,
) -> None:
    """A crash of PostgreSQL empties the UNLOGGED staging of the shares already in and
    restarts the server: TRUNCATE and an older start time recorded on those shares do the
    same here. Finishing the staging restages every partition from the run's claims."""
    count, gross, found = _crash_in_staging(env)
    q_commit = "UPDATE settlement_stage_shares SET server_started_at = '2000-01-01' " \
        "WHERE done_at IS NOT NULL RETURNING share"  # fmt: skip
    import psycopg

    with psycopg.connect(env.url) as conn:
        conn.execute(f"TRUNCATE settlement_sources_{found.id.lower()}")
        assert len(conn.execute(q_commit).fetchall()) == SHARES - 1

    done = run(env.service.complete(found.id))
    assert done.status == "completed", done.error
    _settled_once(env, count, gross)


def test_shares_are_cut_after_the_previous_runs_cutoff(env: Env) -> None:
    """The window reaches back a week, into sources an earlier run claimed: the shares split
    what came after that run's cutoff, and still cover the whole window between them."""

    async def scenario() -> tuple[SettlementRun, SettlementRun]:
        m = await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
        await capture(env, m, 1_000, "usd", "visa")
        first = await env.service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=await db_now(env))
        for amount in (2_000, 3_000, 4_000):
            await capture(env, m, amount, "usd", "visa")
        service = make_service(env.db, env.files, env.destinations, workers=SHARES)
        second, _ = await service.start(SYSTEM_CLI, ORIGIN, TODAY, cutoff_at=await db_now(env))
        await service.complete(second.id)
        return first, second

    first, second = run(scenario())
    shares = q(env.url, "SELECT from_at, to_at FROM settlement_stage_shares WHERE run_id = %s "
               "ORDER BY share", second.id)  # fmt: skip
    assert len(shares) == SHARES
    assert shares[0][0] == second.lookback_from and shares[-1][1] == second.cutoff_at
    assert all(a[1] == b[0] for a, b in pairwise(shares))  # contiguous, no gap, no overlap
    # The cuts are among the captures after the first run's cutoff, not across the week.
    ((newest_first,),) = q(
        env.url,
        "SELECT min(created_at) FROM ledger_transfers WHERE code = 'capture' AND created_at >= %s",
        first.cutoff_at,
    )
    assert all(newest_first <= from_at for from_at, _ in shares[1:])
    assert q(env.url, "SELECT business_date, count(*) FROM settlement_items GROUP BY 1 "
             "ORDER BY 1") == [(YESTERDAY, 1), (TODAY, 3)]  # fmt: skip
