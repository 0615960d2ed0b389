"""The in-memory ledger store behind the real LedgerService: the scenarios of
tests/integration/test_ledger_post.py, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clearport.access.domain import Principal, PrincipalKind
from clearport.core.errors import ClearportError, InvalidRequest, NotFound
from clearport.core.pagination import PageRequest
from clearport.core.uow import FakeUnitOfWork
from clearport.ledger.domain import (
    AccountKind,
    AccountRef,
    LedgerError,
    LedgerStateError,
    TransferRequest,
)
from clearport.ledger.fake import FakeLedgerStore
from clearport.ledger.service import LedgerService
from clearport.merchants.fake import FakeMerchantRepository
from tests.unit.payments_world import TickingClock

M = "mer_01JD3ZZZZZZZZZZZZZZZZZZZZZ"
RECV = AccountRef("platform", AccountKind.PROCESSOR_RECEIVABLE, "usd")
PEND = AccountRef(M, AccountKind.PENDING, "usd")
AVAIL = AccountRef(M, AccountKind.AVAILABLE, "usd")
RESERVE = AccountRef(M, AccountKind.RESERVE, "usd")
FEES = AccountRef("platform", AccountKind.FEE_REVENUE, "usd")
FAR = datetime(2100, 1, 1, tzinfo=UTC)


def capture(i: str, amount: int) -> TransferRequest:
    return TransferRequest(f"{i}:capture", RECV, PEND, amount, "usd", "capture", source=i)


def hold(i: str, amount: int, **kw: object) -> TransferRequest:
    return TransferRequest(i, AVAIL, RESERVE, amount, "usd", "reserve_hold", **kw)  # type: ignore[arg-type]


@pytest.fixture
def ledger() -> tuple[FakeUnitOfWork, FakeLedgerStore, LedgerService]:
    clock = TickingClock()
    store = FakeLedgerStore(clock)
    uow = FakeUnitOfWork(store)
    return uow, store, LedgerService(uow, store, clock)


Ledger = tuple[FakeUnitOfWork, FakeLedgerStore, LedgerService]


async def test_capture_fee_balances_and_idempotent_ids(ledger: Ledger) -> None:
    uow, _, service = ledger
    fee = TransferRequest("pay_1:fee", PEND, FEES, 320, "usd", "fee", source="pay_1")
    async with uow.transaction() as tx:
        results = await service.post(tx, [capture("pay_1", 10_000), fee])
    assert [r.status for r in results] == ["created", "created"]
    async with uow.transaction() as tx:
        again = await service.post(tx, [capture("pay_1", 10_000)])
        assert (again[0].status, again[0].txn_id) == ("exists", results[0].txn_id)
        assert await service.balances(tx, M) == {AccountKind.PENDING: {"usd": 9_680}}
        assert await service.balances(tx, "platform") == {
            AccountKind.PROCESSOR_RECEIVABLE: {"usd": 10_000},
            AccountKind.FEE_REVENUE: {"usd": 320},
        }
        with pytest.raises(LedgerStateError) as reused:
            await service.post(tx, [capture("pay_1", 9_999)])
    assert reused.value.code == "transfer_exists_with_different_fields"


async def test_holds_partial_post_void_and_expiry(ledger: Ledger) -> None:
    uow, _, service = ledger
    settle = TransferRequest("settle:1", PEND, AVAIL, 5_000, "usd", "settle")
    async with uow.transaction() as tx:
        await service.post(tx, [capture("pay_a", 5_000)])
        await service.post(tx, [settle])
        await service.post(
            tx,
            [
                hold("h1", 1_000, pending=True),
                hold("h2", 2_000, pending=True),
                hold("h3", 500, pending=True, expires_at=FAR),
            ],
        )
        avail = await service.account(tx, AVAIL)
        assert avail is not None and avail.debits_pending == 3_500
        await service.post(tx, [hold("h1:post", 600, pending_id="h1")])
        await service.post(tx, [hold("h2:void", 2_000, pending_id="h2", void=True)])
        assert await service.expire(tx, now=FAR - timedelta(days=1)) == 0
        assert await service.expire(tx, now=FAR) == 1
        assert await service.expire(tx, now=FAR) == 0
        avail, reserve = await service.account(tx, AVAIL), await service.account(tx, RESERVE)
    assert avail is not None and reserve is not None
    assert (avail.balance, avail.debits_pending) == (4_400, 0)
    assert (reserve.balance, reserve.credits_pending) == (600, 0)
    async with uow.transaction() as tx:
        for pending_id, code in (
            ("h1", "pending_already_resolved"),
            ("h3", "pending_already_resolved"),
            ("settle:1", "not_pending"),
            ("nope", "pending_not_found"),
        ):
            with pytest.raises(LedgerStateError) as err:
                await service.post(tx, [hold(f"{pending_id}:again", 1, pending_id=pending_id)])
            assert err.value.code == code


BAD: list[tuple[str, TransferRequest, type[ClearportError], str]] = [
    ("currency", TransferRequest("x", RECV, PEND, 5, "eur", "capture"), LedgerStateError,
     "currency_mismatch"),
    ("unknown account id", TransferRequest("x", 987654321, PEND, 5, "usd", "capture"), NotFound,
     "account_not_found"),
    ("post non-pending", TransferRequest("x", RECV, PEND, 5, "usd", "capture",
     pending_id="seed:capture"), LedgerStateError, "not_pending"),
    ("void missing", TransferRequest("x", RECV, PEND, 5, "usd", "capture", pending_id="zz",
     void=True), LedgerStateError, "pending_not_found"),
    ("reused id", TransferRequest("seed:capture", RECV, PEND, 6, "usd", "capture"),
     LedgerStateError, "transfer_exists_with_different_fields"),
    ("overdraft", TransferRequest("x", AVAIL, RESERVE, 5, "usd", "reserve_hold"), LedgerStateError,
     "exceeds_credits"),
    ("same", TransferRequest("x", PEND, PEND, 5, "usd", "capture"), LedgerError, "same_account"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "bad", "error", "code"), BAD, ids=[b[0] for b in BAD])
async def test_bad_input_rejects_the_whole_group(
    ledger: Ledger, name: str, bad: TransferRequest, error: type[ClearportError], code: str
) -> None:
    uow, store, service = ledger
    async with uow.transaction() as tx:
        await service.post(tx, [capture("seed", 100)])
    async with uow.transaction() as tx:
        with pytest.raises(error) as err:
            await service.post(tx, [capture("good", 50), bad])
        assert err.value.code == code
        assert [t.id for t in store.transfers] == ["seed:capture"]
        assert store.balance(PEND) == 100
        assert await service.account(tx, AVAIL) is None  # nor opened an account


async def test_a_failing_transaction_takes_its_posts_back(ledger: Ledger) -> None:
    uow, store, service = ledger
    with pytest.raises(RuntimeError):
        async with uow.transaction() as tx:
            await service.post(tx, [capture("pay_1", 100)])
            raise RuntimeError("the use case failed after posting")
    assert store.transfers == [] and store.balance(PEND) == 0
    assert uow.rollbacks == 1


async def test_balance_as_of_and_balance_transactions() -> None:
    clock = TickingClock()
    merchants = FakeMerchantRepository()
    store = FakeLedgerStore(clock, merchants)
    uow = FakeUnitOfWork(store)
    service = LedgerService(uow, store, clock)
    merchant = merchants.add()
    pending = AccountRef(merchant.id, AccountKind.PENDING, "usd")
    stamps = []
    for i in range(3):
        async with uow.transaction() as tx:
            await service.post(
                tx,
                [TransferRequest(f"p{i}:capture", RECV, pending, 100 * (i + 1), "usd", "capture")],
            )
        stamps.append(clock.at)
    async with uow.transaction() as tx:
        before = await service.account_as_of(tx, pending, stamps[0] - timedelta(seconds=1))
        at = [await service.account_as_of(tx, pending, s) for s in stamps]
    assert before.balance == 0
    assert [a.balance for a in at] == [100, 300, 600]
    who = Principal(PrincipalKind.MERCHANT, key_id="k", merchant_id=merchant.id)
    page = await service.list_balance_transactions(who, None, PageRequest(limit=2), {})
    assert len(page.data) == 2 and page.has_more  # newest first by txn id
    rest = await service.list_balance_transactions(
        who, None, PageRequest(limit=2, starting_after=page.data[-1].id), {}
    )
    shown = [*page.data, *rest.data]
    assert sorted(t.amount_minor for t in shown) == [100, 200, 300] and not rest.has_more
    assert all((t.type, t.status) == ("capture", "pending") for t in shown)
    operator = Principal(PrincipalKind.SYSTEM, key_id="cli")
    with pytest.raises(InvalidRequest):
        await service.merchant_balance(operator, None)
    assert await service.merchant_balance(operator, merchant.id) == {
        AccountKind.PENDING: {"usd": 600}
    }
