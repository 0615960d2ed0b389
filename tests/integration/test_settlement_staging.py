"""What issue 18 changed under the run (decision 0900), against real PostgreSQL: the UNLOGGED
staging that a crash empties is staged again from the run's claims; the claims keep a source
out of every other run; items live in their date's partition, indexed once the run is done;
the report is the lines the pricing pass streamed."""

from __future__ import annotations

import psycopg

from tests.integration.test_settlement_run import (
    BLENDED,
    ORIGIN,
    SYSTEM_CLI,
    TODAY,
    YESTERDAY,
    Env,
    add_merchant,
    capture,
    capture_in,
    db_now,
    env,
    q,
    run,
)
from tests.ledger_support import assert_zero_sum

__all__ = ["env"]  # the fixture, used by name


def _staged(url: str, run_id: str) -> list[tuple[int, int]]:
    return q(  # type: ignore[no-any-return]
        url,
        "SELECT partition, count(*) FROM settlement_sources WHERE run_id = %s "
        "GROUP BY 1 ORDER BY 1",
        run_id,
    )


def test_a_crash_that_empties_the_staging_is_restaged_from_the_claims(env: Env) -> None:
    """PostgreSQL empties UNLOGGED tables when it recovers from a crash: TRUNCATE does the same
    here. The pending partitions are staged again from the run's claims, exactly as before: not
    from the window, which by then also holds a capture committed after the run started (made
    before its cutoff, so in its window, but not claimed by it)."""
    amounts = [5_000 + i for i in range(12)]

    async def scenario() -> tuple[str, list[tuple[int, int]]]:
        merchants = [await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
                     for _ in range(6)]  # fmt: skip
        for i, amount in enumerate(amounts):
            await capture(env, merchants[i % 6], amount, "usd", "visa")
        async with env.db.transaction() as tx:  # committed after the run has staged
            late = await capture_in(tx, env, merchants[0], 777, "usd", "visa")
            cutoff = await db_now(env)
            run_, _ = await env.service.start(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        staged = _staged(env.url, run_.id)
        assert sum(n for _, n in staged) == len(amounts)
        await env.service.run_partition(run_.id, staged[0][0])
        with psycopg.connect(env.url) as conn:  # the crash
            conn.execute(f"TRUNCATE settlement_sources_{run_.id.lower()}")
        assert _staged(env.url, run_.id) == []
        done = await env.service.complete(run_.id)
        assert done.status == "completed", done.error
        return late, staged

    late, staged = run(scenario())
    assert len(staged) >= 2  # a settled partition and at least one restaged
    assert q(env.url, "SELECT count(*), sum(gross) FROM settlement_items") == [
        (len(amounts), sum(amounts))
    ]
    assert q(env.url, "SELECT count(*), count(DISTINCT source_id) FROM settlement_items") == [
        (len(amounts), len(amounts))
    ]
    assert q(env.url, "SELECT count(*) FROM settlement_claims WHERE source_id = %s", late) == [(0,)]
    assert_zero_sum(env.url)
    assert q(env.url, "SELECT count(*) FROM settlement_sources") == [(0,)]  # dropped at the end


def test_a_source_claimed_by_one_run_is_not_staged_by_the_next(env: Env) -> None:
    """Two dates whose windows overlap: the second run stages only what the first did not
    claim, even while the first is not finished."""

    async def scenario() -> tuple[int, int]:
        m = await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
        await capture(env, m, 1_000, "usd", "visa")
        cut1 = await db_now(env)
        first, _ = await env.service.start(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cut1)
        await capture(env, m, 2_000, "usd", "visa")
        cut2 = await db_now(env)
        second, _ = await env.service.start(SYSTEM_CLI, ORIGIN, TODAY, cutoff_at=cut2)
        await env.service.complete(second.id)
        await env.service.complete(first.id)
        return first.stats["staged"], second.stats["staged"]

    assert run(scenario()) == (1, 1)
    assert q(env.url, "SELECT business_date, gross FROM settlement_items ORDER BY 1") == [
        (YESTERDAY, 1_000),
        (TODAY, 2_000),
    ]
    # Each date's items are in that date's partition, indexed once its run completed.
    for day in (YESTERDAY, TODAY):
        name = f"settlement_items_{day:%Y%m%d}"
        assert q(env.url, f"SELECT count(*) FROM {name}") == [(1,)]
        assert q(env.url, "SELECT count(*) FROM pg_indexes WHERE tablename = %s", name) == [(1,)]
    assert q(env.url, "SELECT count(*) FROM pg_indexes WHERE tablename = 'settlement_items'") == [
        (0,)
    ]
