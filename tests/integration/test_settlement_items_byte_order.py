"""Decision 0906 against real PostgreSQL: a night's items carry their ids in byte order
(COLLATE "C", migration 0019), so the date's index is built with memcmp; what a listing or a
comparison with a default-collation column returns is unchanged for the platform's ASCII ids."""

from __future__ import annotations

from tests.integration.test_settlement_run import (
    BLENDED,
    ORIGIN,
    SYSTEM_CLI,
    YESTERDAY,
    Env,
    add_merchant,
    capture,
    db_now,
    env,
    q,
    run,
)

__all__ = ["env"]  # the fixture, used by name


def test_item_ids_are_in_byte_order_and_join_default_collation_columns(env: Env) -> None:
    amounts = [1_000 + i for i in range(6)]

    async def scenario() -> str:
        m = await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
        for amount in amounts:
            await capture(env, m, amount, "usd", "visa")
        cutoff = await db_now(env)
        done = await env.service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=cutoff)
        assert done.status == "completed", done.error
        return m

    run(scenario())
    name = f"settlement_items_{YESTERDAY:%Y%m%d}"
    assert q(
        env.url,
        "SELECT attname, collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation"
        " WHERE attrelid = %s::regclass AND attname IN ('settlement_id', 'source_id')"
        " ORDER BY attname",
        name,
    ) == [("settlement_id", "C"), ("source_id", "C")]
    # Joins with default-collation columns (settlements.id, payments.id) still find every item.
    assert q(
        env.url,
        "SELECT count(*) FROM settlement_items i JOIN settlements s ON s.id = i.settlement_id"
        " JOIN payments p ON p.id = i.source_id",
    ) == [(len(amounts),)]
    # Byte order is the database's order for these ids: the same listing either way.
    by_bytes = q(env.url, "SELECT source_id FROM settlement_items ORDER BY source_id")
    by_default = q(
        env.url, 'SELECT source_id FROM settlement_items ORDER BY source_id COLLATE "default"'
    )
    assert by_bytes == by_default and len(by_bytes) == len(amounts)
