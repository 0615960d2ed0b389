"""The in-memory unit of work: a failing transaction leaves every fake as it was."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clearport.core.errors import InvariantViolation
from clearport.core.uow import FakeUnitOfWork
from clearport.events.domain import Event
from clearport.events.fake import FakeEventStore
from clearport.txlog.domain import TxlogEntry
from clearport.txlog.fake import FakeTxlogStore

AT = datetime(2030, 1, 1, tzinfo=UTC)
EVENT = Event("evt_1", "mer_1", "payment.authorized", "pay_1", {"object": {}}, AT)
ENTRY = TxlogEntry("payment", "pay_1", "pay_1", "mer_1", None, "pending", 1, "usd", "a", None, AT)


async def test_a_failing_transaction_is_rolled_back_in_every_fake() -> None:
    events, txlog = FakeEventStore(), FakeTxlogStore()
    uow = FakeUnitOfWork(events, txlog)
    async with uow.transaction() as tx:
        await events.insert(tx, [EVENT])
    with pytest.raises(ValueError, match="late"):
        async with uow.transaction() as tx:
            await events.insert(tx, [EVENT])
            await txlog.append(tx, [ENTRY])
            raise ValueError("late failure")
    assert (len(events.events), txlog.entries) == (1, [])
    assert (uow.commits, uow.rollbacks, uow.open) == (1, 1, 0)


async def test_autocommit_statements_stay_written() -> None:
    txlog = FakeTxlogStore()
    uow = FakeUnitOfWork(txlog)
    with pytest.raises(ValueError, match="after"):
        async with uow.autocommit() as tx:
            await txlog.append(tx, [ENTRY])
            raise ValueError("after the statement")
    assert txlog.entries == [ENTRY]


async def test_a_transaction_inside_a_transaction_is_a_bug() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(InvariantViolation, match="inside a transaction"):
        async with uow.transaction(), uow.transaction():
            pass
