"""16 concurrent posters, all touching one hot account, overlapping lock sets in random orders:
exact balances at the end and no deadlock."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator

import pytest

from clearport.db.database import Database
from clearport.ledger.domain import AccountKind, AccountRef, TransferRequest
from clearport.ledger.service import LedgerService
from tests.conftest import truncate_all
from tests.ledger_support import assert_zero_sum, with_ledger

pytestmark = pytest.mark.slow

POSTERS = 16
BATCHES = 8
PER_BATCH = 50
HOT = AccountRef("platform", AccountKind.PROCESSOR_RECEIVABLE, "usd")
MERCHANTS = [f"mer_01JD3{i:021d}" for i in range(6)]


@pytest.fixture(autouse=True)
def clean(database_url: str) -> Iterator[None]:
    truncate_all(database_url)
    yield
    assert_zero_sum(database_url)
    truncate_all(database_url)


def test_concurrent_posters_on_one_hot_account(database_url: str) -> None:
    expected: Counter[str] = Counter()
    plans: list[list[list[TransferRequest]]] = []
    rng = random.Random(4)
    for p in range(POSTERS):
        batches = []
        for b in range(BATCHES):
            batch = []
            for i in range(PER_BATCH):
                merchant = rng.choice(MERCHANTS)
                pending = AccountRef(merchant, AccountKind.PENDING, "usd")
                amount = rng.randint(1, 10_000)
                if rng.random() < 0.8:  # capture: hot debit
                    batch.append(
                        TransferRequest(f"{p}:{b}:{i}", HOT, pending, amount, "usd", "capture")
                    )
                    expected[merchant] += amount
                else:  # refund: hot credit
                    batch.append(
                        TransferRequest(f"{p}:{b}:{i}", pending, HOT, amount, "usd", "refund")
                    )
                    expected[merchant] -= amount
            batches.append(batch)
        plans.append(batches)

    async def scenario(db: Database, ledger: LedgerService) -> None:
        async def poster(batches: list[list[TransferRequest]]) -> None:
            for batch in batches:
                async with db.transaction() as tx:
                    results = await ledger.post(tx, batch)
                assert all(r.status == "created" for r in results)

        await asyncio.wait_for(asyncio.gather(*(poster(b) for b in plans)), timeout=120)
        async with db.transaction() as tx:
            hot = await ledger.account(tx, HOT)
            balances = {
                m: (await ledger.balances(tx, m))[AccountKind.PENDING]["usd"] for m in MERCHANTS
            }
        assert hot is not None
        assert hot.balance == sum(expected.values())
        assert balances == dict(expected)

    asyncio.run(with_ledger(database_url, scenario, pool=POSTERS))
