"""The simulators' own settlement files reconcile to zero exceptions after a clean day: each
simulator process writes its day's file (`--settlement-file-dir`) from its own records, in its
connector type's layout, and `reconcile` matches every row with what Clearport recorded."""

from __future__ import annotations

from asyncio import to_thread
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.config import Settings
from clearport.core.sensitive import SensitiveStr
from clearport.payments.domain import PaymentStatus
from clearport.payments.service import InlineCard, NewPayment
from clearport.reconciliation.domain import RUN_COUNTS
from clearport.reconciliation.service import sha256_of
from clearport.vault.cards import CardInput
from clearport.wiring import Container
from tests.e2e.simulators import register, simulator
from tests.payments_support import merchant_principal, with_container
from tests.support import Api

pytestmark = pytest.mark.slow


def payment(amount: int, *, capture: bool, number: str = "4242424242424242") -> NewPayment:
    card = CardInput(SensitiveStr(number), 12, 2030)
    return NewPayment(amount, "eur", InlineCard(card, SensitiveStr("123")), capture, None, {})


@pytest.mark.parametrize("kind", ["http", "iso8583"])
def test_a_clean_day_at_a_simulator_reconciles_to_zero_exceptions(
    api: Api, settings: Settings, tmp_path: Path, kind: str
) -> None:
    merchant_id, _ = api.merchant()
    principal = merchant_principal(merchant_id)
    files = tmp_path / "settlement"
    outcome: dict[str, object] = {}
    with simulator(kind, api.database_url, tmp_path, "--settlement-file-dir", str(files)) as sim:

        async def pay(c: Container) -> None:
            await register(c, "acquirer", sim, timeout_ms=5_000)
            sale = await c.payments.create(principal, payment(1_250, capture=True), None)
            later = await c.payments.create(principal, payment(4_000, capture=False), None)
            await c.payments.capture(principal, later.id, 3_500, None)
            await c.payments.refund(principal, sale.id, 250, None, None)
            voided = await c.payments.create(principal, payment(900, capture=False), None)
            await c.payments.void(principal, voided.id, None)
            declined = await c.payments.create(
                principal, payment(700, capture=True, number="4000000000009995"), None
            )
            assert (sale.status, declined.status) == (
                PaymentStatus.CAPTURED,
                PaymentStatus.DECLINED,
            )

        with_container(
            settings, api.database_url, tmp_path / "data", pay, connectors_default_order=None
        )
        sim.stop()  # its last pass writes the day's final file
        day_file = files / f"{sim.name}-{datetime.now(UTC).date().isoformat()}.csv"
        text = day_file.read_text()
        assert len(text.splitlines()) == 1 + 3  # the header, two captures, a refund

        async def reconcile(c: Container) -> None:
            # As the command does: the digest still being read while the file is staged.
            run, created, _ = await c.reconciliation.reconcile(
                SYSTEM_CLI, Origin("test"), "acquirer", day_file, to_thread(sha256_of, day_file)
            )
            outcome.update(
                {name: getattr(run, name) for name in (*RUN_COUNTS, "rejected", "lines")}
            )
            assert created
            # The same file again, its digest known late (after staging) or at once: the same
            # run, nothing new.
            for digest in (to_thread(sha256_of, day_file), sha256_of(day_file)):
                again, created, _ = await c.reconciliation.reconcile(
                    SYSTEM_CLI, Origin("test"), "acquirer", day_file, digest
                )
                assert (again.id, created) == (run.id, False)

        with_container(settings, api.database_url, tmp_path / "data", reconcile)
    assert outcome["lines"] == 3 and outcome["matched"] == 3 and outcome["rejected"] == 0
    assert all(outcome[name] == 0 for name in RUN_COUNTS if name != "matched"), outcome
