"""Hot platform accounts are sharded (decision 0913): concurrent transactions posting to the
processor receivable do not wait for each other's row lock, the account's balance is the exact
sum of its shards (now and as of a time), a hold is resolved on its own shard, and a replayed
transfer is the same transfer whichever shard it landed on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import asyncpg
import psycopg
import pytest

from clearport.db.database import Database, conn_of
from clearport.ledger.domain import AccountKind, AccountRef, LedgerStateError, TransferRequest
from clearport.ledger.service import LedgerService
from tests.conftest import truncate_all
from tests.ledger_support import assert_zero_sum, with_ledger

M = "mer_01JD3SHARDSHARDSHARDSHARDS"
RECV = AccountRef("platform", AccountKind.PROCESSOR_RECEIVABLE, "usd")
PEND = AccountRef(M, AccountKind.PENDING, "usd")


@pytest.fixture(autouse=True)
def clean(database_url: str) -> Iterator[None]:
    truncate_all(database_url)
    yield
    assert_zero_sum(database_url)
    truncate_all(database_url)


def capture(i: str, amount: int) -> TransferRequest:
    return TransferRequest(f"{i}:capture", RECV, PEND, amount, "usd", "capture", source=i)


def shards(database_url: str, kind: str = "processor_receivable") -> list[tuple[int, int]]:
    with psycopg.connect(database_url) as conn:
        return [
            (int(r[0]), int(r[1]))
            for r in conn.execute(
                "SELECT shard, debits_posted - credits_posted FROM ledger_accounts "
                "WHERE owner = 'platform' AND kind = %s ORDER BY shard",
                (kind,),
            ).fetchall()
        ]


def test_a_second_transaction_does_not_wait_for_the_first_ones_hot_row(
    database_url: str,
) -> None:
    """The first transaction posts to the hot account and stays open (its row locks held until
    it commits); the second posts to the same account under a 2 s lock timeout. On one row it
    would wait for the first and time out; sharded, it lands on another row and commits."""

    async def scenario(db: Database, ledger: LedgerService) -> None:
        async with db.transaction() as first:
            await ledger.post(first, [capture("pay_a", 100)])
            async with db.transaction() as second:
                await conn_of(second).execute("SET LOCAL lock_timeout = '2s'")
                # the merchant's own row is also locked by the first: use another merchant
                other = AccountRef("mer_01JD3OTHEROTHEROTHEROTHERO", AccountKind.PENDING, "usd")
                await ledger.post(
                    second, [TransferRequest("pay_b:capture", RECV, other, 50, "usd", "capture")]
                )
        async with db.transaction() as tx:
            hot = await ledger.account(tx, RECV)
        assert hot is not None and hot.balance == 150

    asyncio.run(with_ledger(database_url, scenario))
    assert len(shards(database_url)) == 2
    assert sorted(b for _, b in shards(database_url)) == [50, 100]


def test_one_shard_setting_puts_every_post_on_one_row(database_url: str) -> None:
    """`clearport.ledger_shards = 1` is the unsharded ledger (the bench's baseline): the second
    transaction waits for the first's row lock and times out."""

    async def scenario(db: Database, ledger: LedgerService) -> None:
        async with db.transaction() as first:
            await conn_of(first).execute("SET LOCAL clearport.ledger_shards = '1'")
            await ledger.post(first, [capture("pay_a", 100)])
            with pytest.raises(asyncpg.LockNotAvailableError):
                async with db.transaction() as second:
                    c = conn_of(second)
                    await c.execute("SET LOCAL clearport.ledger_shards = '1'")
                    await c.execute("SET LOCAL lock_timeout = '500ms'")
                    other = AccountRef("mer_01JD3OTHEROTHEROTHEROTHERO", AccountKind.PENDING, "usd")
                    await ledger.post(
                        second,
                        [TransferRequest("pay_b:capture", RECV, other, 50, "usd", "capture")],
                    )

    asyncio.run(with_ledger(database_url, scenario))
    assert shards(database_url) == [(0, 100)]


def test_balance_now_and_as_of_is_the_sum_of_the_shards(database_url: str) -> None:
    async def scenario(db: Database, ledger: LedgerService) -> None:
        stamps = []
        for i in range(6):  # six transactions: six shards in turn
            async with db.transaction() as tx:
                await ledger.post(tx, [capture(f"pay_{i}", 100 * (i + 1))])
                stamps.append(
                    await conn_of(tx).fetchval(
                        "SELECT j.posted_at FROM ledger_transfers t "
                        "JOIN ledger_journals j ON j.id = t.journal_id WHERE t.id = $1",
                        f"pay_{i}:capture",
                    )
                )
        async with db.transaction() as tx:
            now = await ledger.account(tx, RECV)
            before = await ledger.account_as_of(tx, RECV, stamps[0] - timedelta(microseconds=1))
            at = [await ledger.account_as_of(tx, RECV, s) for s in stamps]
            listed = await ledger.balances(tx, "platform")
        assert now is not None and now.balance == 2_100
        assert listed[AccountKind.PROCESSOR_RECEIVABLE] == {"usd": 2_100}
        assert before.balance == 0
        assert [a.balance for a in at] == [100, 300, 600, 1_000, 1_500, 2_100]

    asyncio.run(with_ledger(database_url, scenario))
    assert len(shards(database_url)) > 1
    assert sum(b for _, b in shards(database_url)) == 2_100


def test_a_hold_is_resolved_on_its_own_shard(database_url: str) -> None:
    """A hold on the hot account, posted from a later transaction (another shard): the post is
    applied to the hold's row, so no row's pending totals go negative and all return to 0."""
    fees = AccountRef("platform", AccountKind.FEE_REVENUE, "usd")

    async def scenario(db: Database, ledger: LedgerService) -> None:
        async with db.transaction() as tx:
            await ledger.post(
                tx, [TransferRequest("h1", RECV, fees, 500, "usd", "hold", pending=True)]
            )
        for i in range(3):  # move the next transaction ids on
            async with db.transaction() as tx:
                await ledger.post(tx, [capture(f"pay_{i}", 10)])
        async with db.transaction() as tx:
            results = await ledger.post(
                tx,
                [TransferRequest("h1:post", RECV, fees, 300, "usd", "hold", pending_id="h1")],
            )
        assert [r.status for r in results] == ["created"]
        async with db.transaction() as tx:
            hot = await ledger.account(tx, RECV)
        assert hot is not None
        assert (hot.balance, hot.debits_pending, hot.credits_pending) == (330, 0, 0)

    asyncio.run(with_ledger(database_url, scenario))
    with psycopg.connect(database_url) as conn:
        same = conn.execute(
            "SELECT p.debit_account_id = r.debit_account_id FROM ledger_transfers p "
            "JOIN ledger_transfers r ON r.pending_id = p.id WHERE p.id = 'h1'"
        ).fetchone()
    assert same == (True,)


def test_a_replay_from_another_transaction_is_the_same_transfer(database_url: str) -> None:
    async def scenario(db: Database, ledger: LedgerService) -> None:
        async with db.transaction() as tx:
            await ledger.post(tx, [capture("pay_1", 100)])
        for i in range(3):
            async with db.transaction() as tx:
                await ledger.post(tx, [capture(f"pay_x{i}", 1)])
        async with db.transaction() as tx:
            again = await ledger.post(tx, [capture("pay_1", 100), capture("pay_2", 7)])
        assert [r.status for r in again] == ["exists", "created"]
        async with db.transaction() as tx:
            with pytest.raises(LedgerStateError) as err:
                await ledger.post(tx, [capture("pay_1", 101)])
        assert err.value.code == "transfer_exists_with_different_fields"
        async with db.transaction() as tx:
            hot = await ledger.account(tx, RECV)
        assert hot is not None and hot.balance == 110

    asyncio.run(with_ledger(database_url, scenario))


def test_merchant_accounts_are_never_sharded(database_url: str) -> None:
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO ledger_accounts (owner, kind, currency, debit_normal, shard) "
            f"VALUES ('{M}', 'pending', 'usd', false, 1)"
        )
