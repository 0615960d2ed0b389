"""Stateful property test: random posts, holds, partial posts, voids, expiries, duplicate ids
and failing linked groups against the real database and a small independent in-memory model.
After every step the balances and the accept/reject decisions (with their codes) agree."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from clearport.core.clock import SystemClock
from clearport.core.errors import ClearportError
from clearport.db.database import Database
from clearport.ledger.domain import AccountKind, AccountRef, TransferRequest
from clearport.ledger.service import LedgerService
from clearport.ledger.store import PgLedgerStore
from tests.conftest import truncate_all
from tests.ledger_support import assert_zero_sum

pytestmark = pytest.mark.slow

M = "mer_01JD3ZZZZZZZZZZZZZZZZZZZZZ"
RECV = AccountRef("platform", AccountKind.PROCESSOR_RECEIVABLE, "usd")
PEND = AccountRef(M, AccountKind.PENDING, "usd")
AVAIL = AccountRef(M, AccountKind.AVAILABLE, "usd")
RESERVE = AccountRef(M, AccountKind.RESERVE, "usd")
PEND_EUR = AccountRef(M, AccountKind.PENDING, "eur")
ACCOUNTS = (RECV, PEND, AVAIL, RESERVE)
FLAGGED = {AVAIL, RESERVE}  # debits must not exceed credits
ROUTES = [(RECV, PEND), (PEND, AVAIL), (AVAIL, RESERVE), (RESERVE, AVAIL), (AVAIL, RECV)]
BASE = datetime(2100, 1, 1, tzinfo=UTC)
UNKNOWN_ACCOUNT_ID = 9_000_000_000


@dataclass
class Totals:
    dp: int = 0
    cp: int = 0
    dq: int = 0
    cq: int = 0


@dataclass
class Model:
    """What the ledger should hold: totals per account, transfers by id, holds."""

    totals: dict[AccountRef, Totals] = field(
        default_factory=lambda: {a: Totals() for a in ACCOUNTS}
    )
    transfers: dict[str, TransferRequest] = field(default_factory=dict)
    resolved: set[str] = field(default_factory=set)

    def holds(self) -> list[TransferRequest]:
        return [t for t in self.transfers.values() if t.pending and t.id not in self.resolved]

    def predict(self, group: list[TransferRequest]) -> tuple[str | None, list[str]]:
        """(error code or None, statuses) in the ledger's order of checks."""
        for t in group:  # checks on the request alone
            if t.amount_minor <= 0:
                return "amount_invalid", []
            if t.debit == t.credit:
                return "same_account", []
            for ref in (t.debit, t.credit):
                if isinstance(ref, AccountRef) and ref.currency != t.currency:
                    return "currency_mismatch", []
        for t in group:  # accounts
            if t.debit == UNKNOWN_ACCOUNT_ID or t.credit == UNKNOWN_ACCOUNT_ID:
                return "account_not_found", []
        for t in group:  # holds being resolved
            if t.pending_id is None or t.id in self.transfers:
                continue
            hold = self.transfers.get(t.pending_id)
            if hold is None:
                return "pending_not_found", []
            if not hold.pending:
                return "not_pending", []
            if t.pending_id in self.resolved:
                return "pending_already_resolved", []
            if not t.void and t.amount_minor > hold.amount_minor:
                return "amount_exceeds_pending", []
        new = [t for t in group if t.id not in self.transfers]
        after = {a: Totals(v.dp, v.cp, v.dq, v.cq) for a, v in self.totals.items()}
        for t in new:
            self._apply(after, t)
        if any(after[a].dp + after[a].dq > after[a].cp for a in FLAGGED):
            return "exceeds_credits", []
        for t in group:
            if t.id in self.transfers and self.transfers[t.id] != t:
                return "transfer_exists_with_different_fields", []
        return None, ["exists" if t.id in self.transfers else "created" for t in group]

    def _apply(self, totals: dict[AccountRef, Totals], t: TransferRequest) -> None:
        assert isinstance(t.debit, AccountRef) and isinstance(t.credit, AccountRef)
        d, c = totals[t.debit], totals[t.credit]
        if t.pending:
            d.dq += t.amount_minor
            c.cq += t.amount_minor
        elif t.pending_id is not None:
            hold = self.transfers[t.pending_id]
            d.dq -= hold.amount_minor
            c.cq -= hold.amount_minor
            if not t.void:
                d.dp += t.amount_minor
                c.cp += t.amount_minor
        else:
            d.dp += t.amount_minor
            c.cp += t.amount_minor

    def commit(self, group: list[TransferRequest]) -> None:
        for t in group:
            if t.id in self.transfers:
                continue
            self._apply(self.totals, t)
            self.transfers[t.id] = t
            if t.pending_id is not None:
                self.resolved.add(t.pending_id)

    def expire(self, now: datetime) -> int:
        due = [h for h in self.holds() if h.expires_at is not None and h.expires_at <= now]
        for h in due:
            assert isinstance(h.debit, AccountRef) and isinstance(h.credit, AccountRef)
            self.totals[h.debit].dq -= h.amount_minor
            self.totals[h.credit].cq -= h.amount_minor
            self.resolved.add(h.id)
        return len(due)


amounts = st.integers(min_value=1, max_value=500)
BAD_KINDS = ["zero", "negative", "same", "currency", "unknown", "reused"]


class LedgerMachine(RuleBasedStateMachine):
    database_url = ""

    def __init__(self) -> None:
        super().__init__()
        truncate_all(self.database_url)
        self.loop = asyncio.new_event_loop()
        self.db = Database(self.database_url, min_size=1, max_size=2)
        self.loop.run_until_complete(self.db.open())
        self.ledger = LedgerService(self.db, PgLedgerStore(), SystemClock())
        self.model = Model()
        self.counter = 0

    def teardown(self) -> None:
        self.loop.run_until_complete(self.db.close())
        self.loop.close()
        assert_zero_sum(self.database_url)

    def new_id(self) -> str:
        self.counter += 1
        return f"t{self.counter}"

    def submit(self, group: list[TransferRequest]) -> None:
        expected_error, expected_statuses = self.model.predict(group)

        async def run() -> list[str]:
            async with self.db.transaction() as tx:
                return [r.status for r in await self.ledger.post(tx, group)]

        try:
            statuses = self.loop.run_until_complete(run())
        except ClearportError as err:
            assert err.code == expected_error, (err.code, expected_error, group)
            return
        assert expected_error is None, (expected_error, group)
        assert statuses == expected_statuses
        self.model.commit(group)

    @rule(
        legs=st.lists(st.tuples(st.sampled_from(ROUTES), amounts), min_size=1, max_size=3),
        bad=st.none() | st.tuples(st.sampled_from(BAD_KINDS), st.integers(0, 3)),
    )
    def post_group(
        self,
        legs: list[tuple[tuple[AccountRef, AccountRef], int]],
        bad: tuple[str, int] | None,
    ) -> None:
        group = [
            TransferRequest(self.new_id(), d, c, amount, "usd", "capture")
            for (d, c), amount in legs
        ]
        if bad is not None:
            kind, pos = bad
            ok = TransferRequest(self.new_id(), RECV, PEND, 5, "usd", "capture")
            broken = {
                "zero": TransferRequest(ok.id, RECV, PEND, 0, "usd", "capture"),
                "negative": TransferRequest(ok.id, RECV, PEND, -7, "usd", "capture"),
                "same": TransferRequest(ok.id, PEND, PEND, 5, "usd", "capture"),
                "currency": TransferRequest(ok.id, RECV, PEND_EUR, 5, "usd", "capture"),
                "unknown": TransferRequest(ok.id, UNKNOWN_ACCOUNT_ID, PEND, 5, "usd", "capture"),
                "reused": self._reused(ok),
            }[kind]
            group.insert(min(pos, len(group)), broken)
        self.submit(group)

    def _reused(self, fallback: TransferRequest) -> TransferRequest:
        if not self.model.transfers:
            return fallback
        old = sorted(self.model.transfers.values(), key=lambda t: t.id)[0]
        return TransferRequest(
            old.id,
            old.debit,
            old.credit,
            old.amount_minor + 1,
            old.currency,
            old.code,
            pending=old.pending,
            pending_id=old.pending_id,
            void=old.void,
            expires_at=old.expires_at,
        )

    @precondition(lambda self: self.model.transfers)
    @rule(data=st.data())
    def resend_existing(self, data: st.DataObject) -> None:
        ids = sorted(self.model.transfers)
        t = self.model.transfers[data.draw(st.sampled_from(ids))]
        self.submit([t])

    @rule(
        route=st.sampled_from(ROUTES),
        amount=amounts,
        expires_in_days=st.none() | st.integers(1, 5),
    )
    def hold(
        self, route: tuple[AccountRef, AccountRef], amount: int, expires_in_days: int | None
    ) -> None:
        expires = None if expires_in_days is None else BASE + timedelta(days=expires_in_days)
        d, c = route
        self.submit(
            [
                TransferRequest(
                    self.new_id(),
                    d,
                    c,
                    amount,
                    "usd",
                    "reserve_hold",
                    pending=True,
                    expires_at=expires,
                )
            ]
        )

    @precondition(lambda self: self.model.transfers)
    @rule(data=st.data(), void=st.booleans(), extra=st.integers(-400, 50))
    def resolve(self, data: st.DataObject, void: bool, extra: int) -> None:
        """Post (partial, full or too much) or void a hold, possibly an already resolved one or
        a transfer that never was a hold."""
        ids = sorted(self.model.transfers)
        target = self.model.transfers[data.draw(st.sampled_from(ids))]
        amount = target.amount_minor if void else max(1, target.amount_minor + extra)
        assert isinstance(target.debit, AccountRef) and isinstance(target.credit, AccountRef)
        self.submit(
            [
                TransferRequest(
                    self.new_id(),
                    target.debit,
                    target.credit,
                    amount,
                    "usd",
                    target.code,
                    pending_id=target.id,
                    void=void,
                )
            ]
        )

    @rule(day=st.integers(0, 6))
    def expire(self, day: int) -> None:
        now = BASE + timedelta(days=day)

        async def run() -> int:
            async with self.db.transaction() as tx:
                return await self.ledger.expire(tx, now=now)

        assert self.loop.run_until_complete(run()) == self.model.expire(now)

    @invariant()
    def balances_agree(self) -> None:
        async def read() -> dict[AccountRef, Totals]:
            out = {}
            async with self.db.transaction() as tx:
                for ref in ACCOUNTS:
                    a = await self.ledger.account(tx, ref)
                    out[ref] = (
                        Totals()
                        if a is None
                        else Totals(
                            a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending
                        )
                    )
            return out

        assert self.loop.run_until_complete(read()) == self.model.totals
        dp = sum(t.dp for t in self.model.totals.values())
        cp = sum(t.cp for t in self.model.totals.values())
        assert dp == cp  # the model itself balances


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ledger_agrees_with_model(database_url: str) -> None:
    LedgerMachine.database_url = database_url
    LedgerMachine.TestCase.settings = settings(
        max_examples=15,
        stateful_step_count=15,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    try:
        LedgerMachine.TestCase().runTest()
    finally:
        truncate_all(database_url)
