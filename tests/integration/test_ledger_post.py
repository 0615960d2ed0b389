"""Ledger posting against the real database: happy paths, two-phase holds, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from clearport.core.errors import ClearportError, InvalidRequest, InvalidState, NotFound
from clearport.db.database import Database, conn_of
from clearport.ledger.domain import (
    AccountKind,
    AccountRef,
    LedgerError,
    LedgerStateError,
    TransferRequest,
)
from clearport.ledger.service import LedgerService
from tests.conftest import truncate_all
from tests.ledger_support import assert_zero_sum, with_ledger

M = "mer_01JD3ZZZZZZZZZZZZZZZZZZZZZ"
M2 = "mer_01JD3YYYYYYYYYYYYYYYYYYYYY"
RECV = AccountRef("platform", AccountKind.PROCESSOR_RECEIVABLE, "usd")
PEND = AccountRef(M, AccountKind.PENDING, "usd")
AVAIL = AccountRef(M, AccountKind.AVAILABLE, "usd")
RESERVE = AccountRef(M, AccountKind.RESERVE, "usd")
FEES = AccountRef("platform", AccountKind.FEE_REVENUE, "usd")


@pytest.fixture(autouse=True)
def clean(database_url: str) -> Iterator[None]:
    truncate_all(database_url)
    yield
    assert_zero_sum(database_url)
    truncate_all(database_url)


def capture(i: str, amount: int, merchant_pending: AccountRef = PEND) -> TransferRequest:
    return TransferRequest(
        id=f"{i}:capture",
        debit=RECV,
        credit=merchant_pending,
        amount_minor=amount,
        currency=merchant_pending.currency,
        code="capture",
        source=i,
    )


def count_transfers(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM ledger_transfers").fetchone()
        assert row is not None
        return int(row[0])


def run(database_url: str, scenario):  # type: ignore[no-untyped-def]
    return asyncio.run(with_ledger(database_url, scenario))


def test_capture_fee_and_balances(database_url: str) -> None:
    async def scenario(db: Database, ledger: LedgerService) -> None:
        async with db.transaction() as tx:
            results = await ledger.post(
                tx,
                [
                    capture("pay_1", 10_000),
                    TransferRequest(
                        id="pay_1:fee",
                        debit=PEND,
                        credit=FEES,
                        amount_minor=320,
                        currency="usd",
                        code="fee",
                        source="pay_1",
                    ),
                ],
            )
        assert [r.status for r in results] == ["created", "created"]
        assert all(r.txn_id.startswith("txn_") for r in results)
        async with db.transaction() as tx:
            again = await ledger.post(tx, [capture("pay_1", 10_000)])
            assert again[0].status == "exists" and again[0].txn_id == results[0].txn_id
            balances = await ledger.balances(tx, M)
            platform = await ledger.balances(tx, "platform")
        assert balances == {AccountKind.PENDING: {"usd": 9_680}}
        # direction convention: receivable is debit-normal, fee revenue credit-normal
        assert platform == {
            AccountKind.PROCESSOR_RECEIVABLE: {"usd": 10_000},
            AccountKind.FEE_REVENUE: {"usd": 320},
        }

    run(database_url, scenario)
    assert count_transfers(database_url) == 2


def test_two_phase_partial_post_void_and_expiry(database_url: str) -> None:
    async def scenario(db: Database, ledger: LedgerService) -> None:
        async with db.transaction() as tx:
            await ledger.post(tx, [capture("pay_a", 5_000)])
            await ledger.post(
                tx,
                [
                    TransferRequest(
                        id="settle:1",
                        debit=PEND,
                        credit=AVAIL,
                        amount_minor=5_000,
                        currency="usd",
                        code="settle",
                    )
                ],
            )
            far = datetime(2100, 1, 1, tzinfo=UTC)
            await ledger.post(
                tx,
                [
                    TransferRequest(
                        id="h1",
                        debit=AVAIL,
                        credit=RESERVE,
                        amount_minor=1_000,
                        currency="usd",
                        code="reserve_hold",
                        pending=True,
                    ),
                    TransferRequest(
                        id="h2",
                        debit=AVAIL,
                        credit=RESERVE,
                        amount_minor=2_000,
                        currency="usd",
                        code="reserve_hold",
                        pending=True,
                    ),
                    TransferRequest(
                        id="h3",
                        debit=AVAIL,
                        credit=RESERVE,
                        amount_minor=500,
                        currency="usd",
                        code="reserve_hold",
                        pending=True,
                        expires_at=far,
                    ),
                ],
            )
            avail = await ledger.account(tx, AVAIL)
            assert avail is not None and avail.debits_pending == 3_500
            # partial post of h1: 600 moves, 400 is released
            await ledger.post(
                tx,
                [
                    TransferRequest(
                        id="h1:post",
                        debit=AVAIL,
                        credit=RESERVE,
                        amount_minor=600,
                        currency="usd",
                        code="reserve_hold",
                        pending_id="h1",
                    )
                ],
            )
            await ledger.post(
                tx,
                [
                    TransferRequest(
                        id="h2:void",
                        debit=AVAIL,
                        credit=RESERVE,
                        amount_minor=2_000,
                        currency="usd",
                        code="reserve_hold",
                        pending_id="h2",
                        void=True,
                    )
                ],
            )
            assert await ledger.expire(tx, now=far - timedelta(days=1)) == 0
            assert await ledger.expire(tx, now=far) == 1
            assert await ledger.expire(tx, now=far) == 0
            avail = await ledger.account(tx, AVAIL)
            reserve = await ledger.account(tx, RESERVE)
        assert avail is not None and reserve is not None
        assert (avail.balance, avail.debits_pending) == (4_400, 0)
        assert (reserve.balance, reserve.credits_pending) == (600, 0)
        async with db.transaction() as tx:
            for pid, code in (
                ("h1", "pending_already_resolved"),
                ("h3", "pending_already_resolved"),
                ("settle:1", "not_pending"),
                ("nope", "pending_not_found"),
            ):
                with pytest.raises(LedgerStateError) as err:
                    await ledger.post(
                        tx,
                        [
                            TransferRequest(
                                id=f"{pid}:again",
                                debit=AVAIL,
                                credit=RESERVE,
                                amount_minor=1,
                                currency="usd",
                                code="reserve_hold",
                                pending_id=pid,
                            )
                        ],
                    )
                assert err.value.code == code

    run(database_url, scenario)


def test_balance_as_of_uses_checkpoints(database_url: str) -> None:
    async def scenario(db: Database, ledger: LedgerService) -> None:
        stamps = []
        for i in range(3):
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
            before = await ledger.account_as_of(tx, PEND, stamps[0] - timedelta(microseconds=1))
            at = [await ledger.account_as_of(tx, PEND, s) for s in stamps]
        assert before.balance == 0
        assert [a.balance for a in at] == [100, 300, 600]

    run(database_url, scenario)


BAD: list[tuple[str, TransferRequest, type[ClearportError], str]] = [
    ("zero", TransferRequest("x", RECV, PEND, 0, "usd", "capture"), LedgerError, "amount_invalid"),
    (
        "negative",
        TransferRequest("x", RECV, PEND, -5, "usd", "capture"),
        LedgerError,
        "amount_invalid",
    ),
    ("same", TransferRequest("x", PEND, PEND, 5, "usd", "capture"), LedgerError, "same_account"),
    (
        "currency",
        TransferRequest("x", RECV, PEND, 5, "eur", "capture"),
        LedgerStateError,
        "currency_mismatch",
    ),
    (
        "owner",
        TransferRequest(
            "x", RECV, AccountRef("platform", AccountKind.PENDING, "usd"), 5, "usd", "capture"
        ),
        LedgerError,
        "owner_invalid",
    ),
    (
        "unknown account id",
        TransferRequest("x", 987654321, PEND, 5, "usd", "capture"),
        NotFound,
        "account_not_found",
    ),
    (
        "post non-pending",
        TransferRequest("x", RECV, PEND, 5, "usd", "capture", pending_id="seed:capture"),
        LedgerStateError,
        "not_pending",
    ),
    (
        "void missing",
        TransferRequest("x", RECV, PEND, 5, "usd", "capture", pending_id="zz", void=True),
        LedgerStateError,
        "pending_not_found",
    ),
    (
        "reused id",
        TransferRequest("seed:capture", RECV, PEND, 6, "usd", "capture"),
        LedgerStateError,
        "transfer_exists_with_different_fields",
    ),
    (
        "overdraft",
        TransferRequest("x", AVAIL, RESERVE, 5, "usd", "reserve_hold"),
        LedgerStateError,
        "exceeds_credits",
    ),
]


@pytest.mark.parametrize(("name", "bad", "error", "code"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_rejects_the_whole_group(
    database_url: str, name: str, bad: TransferRequest, error: type[ClearportError], code: str
) -> None:
    async def scenario(db: Database, ledger: LedgerService) -> None:
        async with db.transaction() as tx:
            await ledger.post(tx, [capture("seed", 100)])
        async with db.transaction() as tx:
            with pytest.raises(error) as err:
                await ledger.post(tx, [capture("good", 50), bad])
            assert err.value.code == code
            # the caller's transaction is still usable, and nothing of the group was written
            assert await conn_of(tx).fetchval("SELECT count(*) FROM ledger_transfers") == 1
            assert (
                await conn_of(tx).fetchval(
                    "SELECT count(*) FROM ledger_accounts WHERE owner = $1", M2
                )
                == 0
            )
            pend = await ledger.account(tx, PEND)
            assert pend is not None and pend.balance == 100

    run(database_url, scenario)
    assert issubclass(error, (InvalidRequest, InvalidState, NotFound))


def test_duplicate_id_in_batch_and_second_resolution_in_batch(database_url: str) -> None:
    async def scenario(db: Database, ledger: LedgerService) -> None:
        async with db.transaction() as tx:
            with pytest.raises(LedgerError) as err:
                await ledger.post(tx, [capture("a", 1), capture("a", 1)])
            assert err.value.code == "duplicate_id_in_batch" and err.value.index == 1
            with pytest.raises(LedgerStateError) as err2:
                await ledger.post(
                    tx,
                    [
                        TransferRequest("p1", RECV, PEND, 5, "usd", "capture", pending_id="h"),
                        TransferRequest(
                            "p2", RECV, PEND, 5, "usd", "capture", pending_id="h", void=True
                        ),
                    ],
                )
            assert err2.value.code == "pending_already_resolved"

    run(database_url, scenario)
    assert count_transfers(database_url) == 0


def test_database_refuses_mutation_and_unbalanced_journals(database_url: str) -> None:
    async def scenario(db: Database, ledger: LedgerService) -> None:
        async with db.transaction() as tx:
            await ledger.post(tx, [capture("pay_x", 100)])

    run(database_url, scenario)
    with psycopg.connect(database_url) as conn:
        for stmt in (
            "UPDATE ledger_transfers SET amount = 1",
            "DELETE FROM ledger_transfers",
            "UPDATE ledger_accounts SET debit_normal = NOT debit_normal",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(stmt)
            conn.rollback()
        # An overdraft on a flagged account written by hand is refused by the CHECK.
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO ledger_accounts (owner, kind, currency, debit_normal, "
                "debits_must_not_exceed_credits, debits_posted) "
                "VALUES ($1, 'available', 'usd', false, true, 5)".replace("$1", f"'{M}'")
            )
        conn.rollback()
        # A journal whose transfer crosses currencies fails at commit (deferred check).
        conn.execute(
            "INSERT INTO ledger_accounts (owner, kind, currency, debit_normal) "
            f"VALUES ('{M}', 'pending', 'eur', false)"
        )
        ids = dict(
            conn.execute(
                "SELECT currency, id FROM ledger_accounts WHERE kind = 'pending'"
            ).fetchall()
        )
        recv = conn.execute(
            "SELECT id FROM ledger_accounts WHERE kind = 'processor_receivable'"
        ).fetchone()
        assert recv is not None
        j = conn.execute(
            "INSERT INTO ledger_journals (transfer_count, created_at, posted_at) "
            "VALUES (1, now(), now()) RETURNING id"
        ).fetchone()
        assert j is not None
        conn.execute(
            "INSERT INTO ledger_transfers (id, txn_id, journal_id, action, debit_account_id, "
            "credit_account_id, amount, currency, code, created_at) "
            "VALUES ('bad', 'txn_bad', %s, 'post', %s, %s, 5, 'usd', 'capture', now())",
            (j[0], recv[0], ids["eur"]),
        )
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.commit()
    assert count_transfers(database_url) == 1
