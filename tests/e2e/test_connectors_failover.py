"""Failover when a simulator process is killed mid-run: payments go on through the other one,
and once the killed host is back and the janitor has run, no payment is lost or doubled —
compared with the processors' own records, not with Clearport's answers."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest

from clearport.config import Settings
from clearport.core.sensitive import SensitiveStr
from clearport.payments.domain import Payment, PaymentStatus
from clearport.payments.service import InlineCard, NewPayment
from clearport.vault.cards import CardInput
from clearport.wiring import Container
from tests.e2e.simulators import Simulator, register, simulator, standing_authorizations
from tests.payments_support import ShiftedClock, merchant_principal, with_container
from tests.sentinel import SentinelScan
from tests.support import Api, pg

pytestmark = pytest.mark.slow

WORKERS = 6
PAYMENTS = 150
KILL_AFTER = 40
TECHNICAL = {"processing_error", "timeout", "connection_refused", "breaker_open"}


def _payment(n: int) -> NewPayment:
    card = CardInput(SensitiveStr("4242424242424242"), 12, 2030)
    return NewPayment(1000 + n, "usd", InlineCard(card, SensitiveStr("123")), n % 3 == 0, None, {})


async def _burst(c: Container, merchant_id: str, primary: Simulator) -> list[Payment]:
    principal = merchant_principal(merchant_id)
    done: list[Payment] = []
    counter = iter(range(PAYMENTS))
    killed = asyncio.Event()

    async def worker() -> None:
        for n in counter:
            done.append(await c.payments.create(principal, _payment(n), None))
            if len(done) >= KILL_AFTER and not killed.is_set():
                killed.set()
                primary.kill()  # SIGKILL, with requests in flight on the other workers

    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return done


def _pending(api: Api) -> int:
    with pg(api.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM payment_attempts WHERE status = 'pending'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_killing_a_simulator_mid_run_loses_and_doubles_nothing(
    api: Api, settings: Settings, tmp_path: Path, log_file: Path
) -> None:
    merchant_id, _ = api.merchant()
    clock = ShiftedClock()
    with (
        simulator("http", api.database_url, tmp_path, "--latency-ms", "5", name="http") as http,
        simulator("iso8583", api.database_url, tmp_path, "--latency-ms", "5", name="iso") as iso,
    ):

        async def work(c: Container) -> list[Payment]:
            # Registered in this order, so payments try the HTTP acquirer first.
            await register(c, "http", http, timeout_ms=2_000, connect_timeout_ms=500)
            await register(c, "iso", iso, timeout_ms=2_000, connect_timeout_ms=500)
            paid = await _burst(c, merchant_id, http)
            # The killed host comes back; reversals the run could not deliver go once its
            # breaker lets a trial call through, each pass of the janitor later than the last.
            http.start()
            c.payments.janitor_grace_s = 0
            deadline = time.monotonic() + 60
            for passes in range(1, 1_000):
                clock.offset = timedelta(hours=2 * passes)  # past every retry_at
                await c.payments.resolve_pending(1_000)
                if _pending(api) == 0:
                    break
                assert time.monotonic() < deadline, "reversals still pending"
                await asyncio.sleep(0.2)
            return paid

        paid = with_container(
            settings,
            api.database_url,
            tmp_path / "data",
            work,
            clock=clock,
            connectors_default_order=None,
            breaker_failure_threshold=3,
            breaker_cooldown_s=1.0,
        )
        assert len(paid) == PAYMENTS
        # Every payment went through, on one connector or the other.
        assert {p.status for p in paid} <= {PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED}
        by_connector = {name: [p for p in paid if p.connector == name] for name in ("http", "iso")}
        assert len(by_connector["http"]) >= KILL_AFTER - WORKERS and by_connector["iso"]
        moved = [p for p in paid if p.routing["failover"]]
        assert moved, "some payment failed over"
        for p in moved:
            assert p.connector == "iso"
            assert [f["connector"] for f in p.routing["failover"]] == ["http"]
            assert p.routing["failover"][0]["decline_code"] in TECHNICAL

        # What stands at the two processors is exactly one authorization per payment: the one
        # Clearport holds (none lost: no approval it does not know of; none doubled).
        standing = standing_authorizations(http, iso)
        assert standing == {p.auth_attempt_id: p.connector for p in paid}
        assert _pending(api) == 0
        with pg(api.database_url) as conn:
            reversals = conn.execute(
                "SELECT reverses, status FROM payment_attempts WHERE operation = 'reverse'"
            ).fetchall()
            sales = conn.execute(
                "SELECT count(*), coalesce(sum(amount_captured), 0) FROM payments "
                "WHERE merchant_id = %s AND status = 'captured'",
                (merchant_id,),
            ).fetchone()
        records = {**http.records(), **iso.records()}
        for reverses, status in reversals:
            assert status == "succeeded"
            # Reversed at the processor, or refused there before it ever arrived.
            assert records[reverses]["state"] == "reversed"
        captured = [r for r in records.values() if r["kind"] == "sale" and r["state"] == "captured"]
        assert sales == (len(captured), sum(r["captured"] for r in captured))
        # No card number or CVC in the logs of either side, nor in anything stored.
        scan = SentinelScan()
        scan.add_pan("4242424242424242")
        scan.add_cvc("123", "4242424242424242")
        for sim in (http, iso):
            assert not scan.scan_texts({sim.name: sim.log.read_text(errors="replace")})
        scan.assert_clean(api.database_url, log_file)
