"""50 identical POSTs at once under one Idempotency-Key: one payment, one authorization."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support import Api, ThreadedServer, pg

pytestmark = pytest.mark.slow

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def test_fifty_concurrent_identical_posts(api: Api, server: ThreadedServer) -> None:
    simulator = server.server.config.app.state.container.simulator
    _, key = api.merchant()
    before = simulator.calls["authorize"]
    body = {"amount": 4200, "currency": "usd", "source": {"card": CARD}}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "one-key-for-all"}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            return list(
                await asyncio.gather(
                    *(client.post("/v1/payments", json=body, headers=headers) for _ in range(50))
                )
            )

    responses = asyncio.run(burst())
    statuses = sorted({r.status_code for r in responses})
    assert set(statuses) <= {201, 409}, statuses
    created: list[dict[str, Any]] = [r.json() for r in responses if r.status_code == 201]
    assert created, "at least the first request must succeed"
    assert len({c["id"] for c in created}) == 1
    assert all(
        r.json()["error"]["type"] == "idempotency_error" for r in responses if r.status_code == 409
    )
    assert simulator.calls["authorize"] - before == 1
    with pg(api.database_url) as conn:
        payments = conn.execute("SELECT count(*) FROM payments").fetchone()
        attempts = conn.execute("SELECT count(*) FROM payment_attempts").fetchone()
    assert payments == (1,)
    assert attempts == (1,)
    # A late retry replays the stored answer, byte for byte.
    retry = api.call("POST", "/v1/payments", key, json=body, idempotency_key="one-key-for-all")
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == created[0]
