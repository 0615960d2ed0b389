"""Random capture / void / refund / expiry sequences against an independent model.

Invariants after every step: amount_captured <= amount, amount_refunded <= amount_captured, the
ledger nets to zero and the merchant's pending balance equals captures minus refunds, and there is
exactly one event per state change (one per txlog row that is not a creation).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.config import Settings
from clearport.core.errors import InvalidRequest, InvalidState
from clearport.db.database import conn_of
from clearport.merchants.service import NewMerchant
from clearport.wiring import Container, build_container
from tests.integration.test_payments_worker import new_payment
from tests.payments_support import ShiftedClock, merchant_principal

pytestmark = pytest.mark.slow


@dataclass
class Model:
    amount: int
    status: str
    captured: int = 0
    refunded: int = 0


CONTEXT: dict[str, Any] = {}


class PaymentMachine(RuleBasedStateMachine):
    payments = Bundle("payments")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = ShiftedClock()
        local: Settings = CONTEXT["settings"].model_copy(update={"data_dir": CONTEXT["dir"]})
        self.c: Container = build_container(local, CONTEXT["url"], clock=self.clock)
        self.run(self.c.start())
        merchant = self.run(
            self.c.merchants.create(
                SYSTEM_CLI,
                Origin(),
                NewMerchant(name="Model", country="US", mcc="5999", default_currency="usd"),
            )
        )
        self.merchant_id = merchant.id
        self.who = merchant_principal(merchant.id)
        self.model: dict[str, Model] = {}

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.c.stop())
        self.loop.close()

    @rule(target=payments, amount=st.integers(1, 10_000), capture=st.booleans())
    def create(self, amount: int, capture: bool) -> str:
        p = self.run(self.c.payments.create(self.who, new_payment(amount, capture), None))
        status = "captured" if capture else "authorized"
        assert str(p.status) == status
        self.model[p.id] = Model(amount, status, amount if capture else 0)
        return p.id

    @rule(pid=payments, part=st.one_of(st.none(), st.integers(1, 12_000)))
    def capture(self, pid: str, part: int | None) -> None:
        m = self.model[pid]
        if m.status != "authorized":
            with pytest.raises(InvalidState):
                self.run(self.c.payments.capture(self.who, pid, part, None))
            return
        if part is not None and part > m.amount:
            with pytest.raises(InvalidRequest):
                self.run(self.c.payments.capture(self.who, pid, part, None))
            return
        p = self.run(self.c.payments.capture(self.who, pid, part, None))
        m.status, m.captured = "captured", m.amount if part is None else part
        assert p.amount_captured == m.captured

    @rule(pid=payments)
    def void(self, pid: str) -> None:
        m = self.model[pid]
        if m.status != "authorized":
            with pytest.raises(InvalidState):
                self.run(self.c.payments.void(self.who, pid, None))
            return
        self.run(self.c.payments.void(self.who, pid, None))
        m.status = "voided"

    @rule(pid=payments, part=st.one_of(st.none(), st.integers(1, 12_000)))
    def refund(self, pid: str, part: int | None) -> None:
        m = self.model[pid]
        left = m.captured - m.refunded
        if m.status != "captured":
            with pytest.raises(InvalidState):
                self.run(self.c.payments.refund(self.who, pid, part, None, None))
            return
        if part is not None and part > left:
            with pytest.raises(InvalidRequest):
                self.run(self.c.payments.refund(self.who, pid, part, None, None))
            return
        r = self.run(self.c.payments.refund(self.who, pid, part, None, None))
        assert str(r.status) == "succeeded"
        m.refunded += r.amount
        if m.refunded == m.captured:
            m.status = "refunded"

    @rule()
    def expire(self) -> None:
        self.clock.offset += timedelta(days=7, seconds=1)
        self.run(self.c.payments.expire_authorizations(1000))
        for m in self.model.values():
            if m.status == "authorized":
                m.status = "expired"

    @invariant()
    def matches_the_model_and_the_ledger(self) -> None:
        async def read() -> dict[str, Any]:
            async with self.c.db.transaction() as tx:
                conn = conn_of(tx)
                rows = await conn.fetch(
                    "SELECT id, status, amount, amount_captured, amount_refunded FROM payments "
                    "WHERE merchant_id = $1",
                    self.merchant_id,
                )
                totals = await conn.fetchrow(
                    "SELECT coalesce(sum(debits_posted), 0) AS d, "
                    "coalesce(sum(credits_posted), 0) AS c FROM ledger_accounts"
                )
                pending = await conn.fetchval(
                    "SELECT coalesce(sum(credits_posted - debits_posted), 0) FROM ledger_accounts "
                    "WHERE owner = $1 AND kind = 'pending'",
                    self.merchant_id,
                )
                mismatched = await conn.fetchval(
                    "SELECT count(*) FROM (SELECT object_id, count(*) FILTER "
                    "(WHERE from_status IS NOT NULL) AS changes FROM txlog WHERE merchant_id = $1 "
                    "GROUP BY object_id) t FULL JOIN (SELECT object_id, count(*) AS n FROM events "
                    "WHERE merchant_id = $1 GROUP BY object_id) e USING (object_id) "
                    "WHERE coalesce(t.changes, 0) <> coalesce(e.n, 0)",
                    self.merchant_id,
                )
            return {"rows": rows, "totals": totals, "pending": pending, "mismatched": mismatched}

        state = self.run(read())
        for row in state["rows"]:
            m = self.model[row["id"]]
            assert row["status"] == m.status
            assert row["amount_captured"] == m.captured
            assert row["amount_refunded"] == m.refunded
            assert 0 <= row["amount_refunded"] <= row["amount_captured"] <= row["amount"]
        assert state["totals"]["d"] == state["totals"]["c"]
        expected = sum(m.captured - m.refunded for m in self.model.values())
        assert state["pending"] == expected
        assert state["mismatched"] == 0


def test_payment_state_machine(
    api: Any, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    CONTEXT.update(settings=settings, url=database_url, dir=tmp_path)
    machine = PaymentMachine.TestCase
    machine.settings = settings_for_machine
    machine().runTest()


settings_for_machine = settings(
    max_examples=12,
    stateful_step_count=15,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
