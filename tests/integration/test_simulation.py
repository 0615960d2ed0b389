"""The money simulation against the test database's server: the seeds that found bugs stay as
regressions, and a broken invariant is reported (the checks can fail)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from clearport.config import Settings
from clearport.simulation import dispose_database, prepare_database, run_seed
from clearport.simulation.database import SimulationStore, server_url

pytestmark = pytest.mark.slow

# Each seed with the prefix that failed before its fix.
REGRESSIONS = [
    (5, 30),  # an abandoned idempotency key forgot its payment: the retry charged again
    (18, 19),  # a later run settled an interrupted run's sources: the resumed run never finished
]


@pytest.fixture(scope="module")
def sim_database(database_url: str) -> Iterator[str]:
    name = asyncio.run(prepare_database(database_url))
    yield name
    asyncio.run(dispose_database(database_url, name))


@pytest.mark.parametrize(("seed", "steps"), REGRESSIONS)
def test_seeds_that_found_bugs_pass(
    settings: Settings, database_url: str, sim_database: str, seed: int, steps: int
) -> None:
    report = asyncio.run(run_seed(settings, database_url, sim_database, seed, steps))
    assert [v.line() for v in report.violations] == []
    assert report.steps == steps
    assert sum(report.faults.values()) > 0


def test_an_unbalanced_ledger_is_a_violation(database_url: str, sim_database: str) -> None:
    """The check the simulator runs after every step reports a ledger that does not add up, and
    the reset before the next seed puts the database back as migrated."""
    url = server_url(database_url, sim_database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ledger_accounts (owner, kind, currency, debit_normal, debits_posted) "
            "VALUES ('platform', 'fee_revenue', 'usd', false, 5)"
        )

    async def check() -> tuple[list[str], list[str]]:
        store = await SimulationStore.connect(url)
        try:
            found = await store.ledger_imbalances()
            await store.reset()
            return found, await store.ledger_imbalances()
        finally:
            await store.close()

    found, after_reset = asyncio.run(check())
    assert any("does not sum to zero in usd" in f for f in found), found
    assert any("does not equal its postings" in f for f in found), found
    assert after_reset == []


def test_a_card_number_anywhere_is_found(database_url: str, sim_database: str) -> None:
    """The end-of-run scan finds a card number as text and inside bytes (a stored body)."""
    url = server_url(database_url, sim_database)
    number = "4242424242424242"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE planted_text (x text)")
        conn.execute("CREATE TABLE planted_bytes (x bytea)")
        conn.execute("INSERT INTO planted_text VALUES (%s)", (f"card {number} leaked",))
        conn.execute("INSERT INTO planted_bytes VALUES (%s)", (f'{{"n":"{number}"}}'.encode(),))

    async def scan() -> list[str]:
        store = await SimulationStore.connect(url)
        try:
            return await store.texts_containing([number, "5555555555554444"])
        finally:
            await store.close()

    try:
        found = asyncio.run(scan())
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TABLE planted_text, planted_bytes")
    assert sorted(found) == [
        '"public"."planted_bytes" holds a card number',
        '"public"."planted_text" holds a card number',
    ]
