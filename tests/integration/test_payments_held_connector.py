"""Deterministic concurrency over real PostgreSQL: requests and janitors held inside a fake
connector while the test looks at what they hold.

Unlike the bursts in test_payments_concurrency.py, these cannot pass by luck: the second request
is sent while the first is known to be at the connector.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import psycopg
import pytest

from clearport.config import Settings
from clearport.connectors.fake import Answer, FakeConnector
from clearport.core.errors import InvalidState
from clearport.http.app import create_app
from clearport.payments.domain import PaymentStatus
from clearport.wiring import Container, build_container
from tests.payments_support import ShiftedClock, merchant_principal
from tests.support import Api, pg

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


@asynccontextmanager
async def serving(
    settings: Settings, database_url: str, fake: FakeConnector, clock: ShiftedClock | None = None
) -> AsyncIterator[tuple[Container, httpx.AsyncClient]]:
    """The API over its own container, in this test's event loop, paying through `fake`."""
    container = build_container(settings, database_url, clock=clock, connectors={"fake": fake})
    await container.start()
    try:
        transport = httpx.ASGITransport(app=create_app(container))
        async with httpx.AsyncClient(transport=transport, base_url="http://clearport") as client:
            yield container, client
    finally:
        await container.stop()


def lock_is_free(database_url: str, table: str, row_id: str) -> bool:
    """Whether another session could lock the row right now."""
    with pg(database_url) as conn:
        try:
            conn.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE NOWAIT", (row_id,))
        except psycopg.errors.LockNotAvailable:
            return False
        return True


async def test_the_same_key_meanwhile_gets_409_then_the_replay(
    api: Api, settings: Settings, database_url: str
) -> None:
    _, key = api.merchant()
    fake = FakeConnector()
    release = fake.hold("authorize")
    body = {"amount": 4200, "currency": "usd", "source": {"card": CARD}}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "held-key"}
    async with serving(settings, database_url, fake) as (_, client):
        first = asyncio.create_task(client.post("/v1/payments", json=body, headers=headers))
        await fake.until_held("authorize")
        meanwhile = await client.post("/v1/payments", json=body, headers=headers)
        assert meanwhile.status_code == 409, meanwhile.text
        assert meanwhile.json()["error"]["type"] == "idempotency_error"
        release.set()
        answered = await first
        assert answered.status_code == 201, answered.text
        assert answered.json()["status"] == "authorized"
        replay = await client.post("/v1/payments", json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == answered.content
    assert fake.calls["authorize"] == 1
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM payments").fetchone() == (1,)


async def test_a_capture_held_at_the_connector_holds_no_lock(
    api: Api, settings: Settings, database_url: str
) -> None:
    _, key = api.merchant()
    fake = FakeConnector()
    body = {"amount": 1000, "currency": "usd", "source": {"card": CARD}}
    auth = {"Authorization": f"Bearer {key}"}
    async with serving(settings, database_url, fake) as (_, client):
        payment = (await client.post("/v1/payments", json=body, headers=auth)).json()
        release = fake.hold("capture")
        capture = asyncio.create_task(
            client.post(f"/v1/payments/{payment['id']}/capture", headers=auth)
        )
        await fake.until_held("capture")
        assert lock_is_free(database_url, "payments", payment["id"])
        second = await client.post(f"/v1/payments/{payment['id']}/capture", headers=auth)
        assert second.status_code == 409
        assert "in progress" in second.json()["error"]["message"]
        release.set()
        captured = await capture
    assert captured.status_code == 200 and captured.json()["status"] == "captured"
    assert fake.calls["capture"] == 1


async def test_the_janitor_holds_no_lock_while_it_asks_or_voids(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    clock = ShiftedClock()
    fake = FakeConnector()
    fake.will("authorize", Answer.APPROVE, Answer.LOSE_ANSWER)
    body = {"amount": 1000, "currency": "usd", "source": {"card": CARD}}
    auth = {"Authorization": f"Bearer {key}"}
    async with serving(settings, database_url, fake, clock) as (c, client):
        expiring = (await client.post("/v1/payments", json=body, headers=auth)).json()
        lost = asyncio.create_task(client.post("/v1/payments", json=body, headers=auth))
        await fake.until_held("authorize")
        lost.cancel()  # the request dies while the processor has approved it
        with pytest.raises(asyncio.CancelledError):
            await lost
        [attempt_id, pending_id] = _pending_attempt(database_url)

        # Resolving: the attempt is chosen and committed before the connector is asked.
        release = fake.hold("status")
        c.payments.janitor_grace_s = 0
        janitor = asyncio.create_task(c.payments.resolve_pending(100))
        await fake.until_held("status")
        assert lock_is_free(database_url, "payment_attempts", attempt_id)
        assert lock_is_free(database_url, "payments", pending_id)
        release.set()
        assert await janitor == 1
        resolved = await c.payments.get(merchant_principal(merchant_id), pending_id)
        assert resolved.status is PaymentStatus.AUTHORIZED

        # Expiring: claimed (the marker refuses a capture) and committed before the void.
        clock.offset = timedelta(days=7, seconds=5)
        release = fake.hold("void")
        expiry = asyncio.create_task(c.payments.expire_authorizations(100))
        await fake.until_held("void")  # the first of the two; the second waits its turn
        for payment_id in (expiring["id"], pending_id):
            assert lock_is_free(database_url, "payments", payment_id)
            with pytest.raises(InvalidState, match="expire of this payment is in progress"):
                await c.payments.capture(merchant_principal(merchant_id), payment_id, None, None)
        release.set()
        assert await expiry == 2
    with pg(api.database_url) as conn:
        expired = conn.execute(
            "SELECT count(*) FROM payments WHERE status = 'expired' AND pending_operation IS NULL"
        ).fetchone()
        events = conn.execute("SELECT count(*) FROM events WHERE type = 'payment.expired'")
        assert (expired, events.fetchone()) == ((2,), (2,))


def _pending_attempt(database_url: str) -> tuple[str, str]:
    with pg(database_url) as conn:
        row = conn.execute(
            "SELECT id, payment_id FROM payment_attempts WHERE status = 'pending'"
        ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])
