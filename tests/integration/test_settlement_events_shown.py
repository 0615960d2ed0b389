"""A partition's `settlement.completed` and `payout.created` events are built from what the
partition wrote, not read back (decision 0915): each must show exactly what a read-back of the
row in the same transaction shows, byte for byte, in the order a read-back by id gives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from clearport.access.domain import SYSTEM_CLI
from clearport.core.clock import SystemClock
from clearport.core.uow import Transaction
from clearport.db.database import Database
from clearport.events.domain import Event
from clearport.events.service import Outbox
from clearport.events.store import PgEventStore
from clearport.http.representation import payout_json, settlement_json
from clearport.ledger.service import LedgerService
from clearport.ledger.store import PgLedgerStore
from clearport.settlement.store import PgSettlementStore
from tests.conftest import truncate_all
from tests.integration.test_settlement_run import (
    BLENDED,
    EU_BANK,
    ICPP,
    ORIGIN,
    TODAY,
    US_BANK,
    YESTERDAY,
    Env,
    FakeDestinations,
    add_merchant,
    capture,
    db_now,
    make_service,
    q,
    refund,
    run,
)
from tests.ledger_support import assert_zero_sum


class ReadBackOutbox(Outbox):
    """The outbox, which also reads back, in the emitting transaction, each settlement and
    payout an event shows, and keeps both renderings as JSON text."""

    def __init__(self) -> None:
        super().__init__(PgEventStore(), SystemClock())
        self._settlements = PgSettlementStore()
        self.shown: list[tuple[str, str, str]] = []  # (type, as emitted, as read back)
        self.batches: list[list[tuple[str, str]]] = []  # (type, object id) per emit_all

    async def emit_all(
        self, tx: Transaction, changes: Sequence[tuple[str, dict[str, Any], str | None]]
    ) -> list[Event]:
        batch = []
        for type_, shown, _ in changes:
            batch.append((type_, str(shown["id"])))
            if type_ == "settlement.completed":
                (settlement,) = await self._settlements.settlements_by_id(tx, [shown["id"]])
                read = settlement_json(settlement)
            elif type_ == "payout.created":
                (payout,) = await self._settlements.payouts_by_id(tx, [shown["id"]])
                read = payout_json(payout)
            else:
                continue
            self.shown.append((type_, json.dumps(shown), json.dumps(read)))
        self.batches.append(batch)
        return await super().emit_all(tx, changes)


@pytest.fixture
def env_outbox(database_url: str, tmp_path: Path) -> Iterator[tuple[Env, ReadBackOutbox]]:
    loop = asyncio.new_event_loop()
    db = Database(database_url, min_size=1, max_size=4)
    loop.run_until_complete(db.open())
    files = tmp_path / "files"
    destinations = FakeDestinations()
    outbox = ReadBackOutbox()
    service = make_service(db, files, destinations, partitions=2, outbox=outbox)
    ledger = LedgerService(db, PgLedgerStore(), SystemClock())
    asyncio.set_event_loop(loop)
    yield Env(db, service, ledger, destinations, files, database_url), outbox
    loop.run_until_complete(db.close())
    loop.close()
    truncate_all(database_url)


def test_events_show_what_a_read_back_shows(env_outbox: tuple[Env, ReadBackOutbox]) -> None:
    """Two dates: payouts, a reserve held then released, a deficit carried then netted, a
    failed payout repaid, a merchant without a bank account, interchange++ in euros."""
    env, outbox = env_outbox

    async def scenario() -> None:
        held = await add_merchant(env, country="US", currency="usd", pricing=BLENDED,
                                  reserve={"percent_bps": 500, "hold_days": 1})  # fmt: skip
        short = await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
        euro = await add_merchant(env, country="DE", currency="eur", pricing=ICPP)
        nobank = await add_merchant(env, country="US", currency="usd", pricing=BLENDED)
        for merchant, bank in ((held, US_BANK), (short, US_BANK), (euro, EU_BANK)):
            env.destinations.accounts[merchant] = bank
        for i in range(3):
            await capture(env, held, 10_000 + i, "usd", ["visa", "amex"][i % 2])
            await capture(env, euro, 4_999 + 333 * i, "eur", ["visa", "mastercard"][i % 2])
        paid = await capture(env, short, 1_000, "usd", "visa")
        await refund(env, short, paid, 1_000, "usd")  # fees only: a deficit carried
        await capture(env, nobank, 5_000, "usd", "visa")
        await env.service.settle(SYSTEM_CLI, ORIGIN, YESTERDAY, cutoff_at=await db_now(env))
        (po,) = q(env.url, "SELECT id FROM payouts WHERE merchant_id = %s", held)
        await env.service.mark_payout(SYSTEM_CLI, ORIGIN, po[0], "failed", "R01")
        await capture(env, held, 7_000, "usd", "visa")
        await capture(env, short, 9_000, "usd", "mastercard")
        await env.service.settle(SYSTEM_CLI, ORIGIN, TODAY, cutoff_at=await db_now(env))

    run(scenario())
    # What the second date netted: a release, a carried deficit, a repayment.
    (second,) = q(
        env.url,
        "SELECT sum(reserve_released), sum(carried_in), sum(repaid) FROM settlements "
        "WHERE business_date = %s",
        TODAY,
    )
    assert second[0] > 0 and second[1] < 0 and second[2] > 0
    settled = [s for s in outbox.shown if s[0] == "settlement.completed"]
    created = [s for s in outbox.shown if s[0] == "payout.created"]
    assert len(settled) == 4 + 2 and len(created) == 3 + 2
    for type_, emitted, read_back in outbox.shown:
        assert emitted == read_back, type_
    # In each partition's batch: the settlements by id, then the payouts by id.
    for batch in outbox.batches:
        kinds = [t for t, _ in batch]
        assert kinds == sorted(kinds, key=lambda t: t != "settlement.completed")
        for kind in ("settlement.completed", "payout.created"):
            ids = [i for t, i in batch if t == kind]
            assert ids == sorted(ids)
    # And what the outbox stored is what it was given.
    stored = dict(
        q(
            env.url,
            "SELECT object_id, data->'object' FROM events "
            "WHERE type IN ('settlement.completed', 'payout.created')",
        )
    )
    assert {json.loads(e)["id"]: json.loads(e) for _, e, _ in outbox.shown} == stored
    assert_zero_sum(env.url)
