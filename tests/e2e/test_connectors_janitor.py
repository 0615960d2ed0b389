"""The janitor, in a process of its own (`clearport janitor`), resolves an authorization whose
answer was lost, through each simulator in its own process: the HTTP acquirer by a status
inquiry (the approval is kept), ISO 8583 by a reversal (the approval is undone). Either way the
processor's own records and Clearport's agree afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from clearport.config import Settings
from clearport.core.sensitive import SensitiveStr
from clearport.payments.service import InlineCard, NewPayment
from clearport.vault.cards import CardInput
from clearport.wiring import Container
from tests.e2e.simulators import CLI, register, simulator, standing_authorizations
from tests.payments_support import merchant_principal, with_container
from tests.support import TEST_SERVER_SECRET, Api, pg

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("kind", "status", "state"),
    [("http", "authorized", "approved"), ("iso8583", "failed", "reversed")],
)
def test_the_janitor_in_another_process_resolves_a_lost_answer(
    api: Api, settings: Settings, tmp_path: Path, kind: str, status: str, state: str
) -> None:
    merchant_id, _ = api.merchant()
    data_dir = tmp_path / "data"
    card = CardInput(SensitiveStr("4242424242424242"), 12, 2030)
    new = NewPayment(4200, "usd", InlineCard(card, SensitiveStr("123")), False, None, {})
    # The processor acts on every authorization and never answers.
    with simulator(kind, api.database_url, tmp_path, "--timeout-rate", "1") as sim:

        async def crash_while_the_processor_has_it(c: Container) -> str:
            await register(c, "acquirer", sim, timeout_ms=30_000)
            request = asyncio.create_task(
                c.payments.create(merchant_principal(merchant_id), new, None)
            )
            deadline = time.monotonic() + 20
            while not sim.records():
                assert time.monotonic() < deadline, "the processor never got the call"
                await asyncio.sleep(0.05)
            request.cancel()  # the process dies before the answer
            with contextlib.suppress(asyncio.CancelledError):
                await request
            with pg(api.database_url) as conn:
                row = conn.execute(
                    "SELECT id, status FROM payments WHERE merchant_id = %s", (merchant_id,)
                ).fetchone()
            assert row is not None and row[1] == "pending"
            return str(row[0])

        payment_id = with_container(
            settings,
            api.database_url,
            data_dir,
            crash_while_the_processor_has_it,
            connectors_default_order=None,
        )
        env = {
            **os.environ,
            "DATABASE_URL": api.database_url,
            "CLEARPORT_DATA_DIR": str(data_dir),
            "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
            "CLEARPORT_LOG_LEVEL": "WARNING",
        }
        janitor = subprocess.run(
            [CLI, "janitor", "--grace", "0"], env=env, capture_output=True, text=True, timeout=120
        )
        assert janitor.returncode == 0, janitor.stderr[-2000:]
        assert json.loads(janitor.stdout) == {"resolved": 1, "expired": 0}
        with pg(api.database_url) as conn:
            shown = conn.execute(
                "SELECT status, auth_attempt_id FROM payments WHERE id = %s", (payment_id,)
            ).fetchone()
            pending = conn.execute(
                "SELECT count(*) FROM payment_attempts WHERE status = 'pending'"
            ).fetchone()
        assert shown is not None and shown[0] == status
        assert pending == (0,)
        [record] = [r for r in sim.records().values() if r["kind"] == "authorize"]
        assert (record["reference"], record["state"], record["answered"]) == (
            shown[1],
            state,
            False,
        )
        # What stands at the processor is exactly what Clearport holds as authorized.
        expected = {shown[1]: sim.name} if status == "authorized" else {}
        assert standing_authorizations(sim) == expected
