"""Settlement over HTTP: runs (operators), settlements, items and payouts (merchants: their own)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from clearport.config import Settings
from clearport.wiring import build_container
from tests.integration.test_payments_api import pay, post
from tests.support import Api

US_BANK = {
    "country": "US",
    "currency": "usd",
    "account_holder": "Demo Coffee LLC",
    "routing_number": "110000000",
    "account_number": "000123456789",
}


def work_queued_jobs(settings: Settings, database_url: str) -> None:
    """What `clearport worker` does with a run the API queued: take its jobs until none is
    left (the API process itself settles nothing)."""

    async def main() -> None:
        container = build_container(settings, database_url)
        await container.start(listen=False)
        try:
            await container.settlement_jobs.run_worker(wait=False)
        finally:
            await container.stop()

    asyncio.run(main())


def wait_run(api: Api, key: str, run_id: str, settings: Settings) -> dict[str, Any]:
    r = api.call("GET", f"/v1/settlement_runs/{run_id}", key)
    assert r.status_code == 200 and r.json()["status"] == "running", r.text
    work_queued_jobs(settings, api.database_url)
    for _ in range(300):
        r = api.call("GET", f"/v1/settlement_runs/{run_id}", key)
        assert r.status_code == 200, r.text
        if r.json()["status"] != "running":
            return dict(r.json())
        time.sleep(0.05)
    raise AssertionError("settlement run did not finish")


def test_settlement_over_http(api: Api, settings: Settings) -> None:
    admin = api.operator("admin")
    merchant, key = api.merchant(admin, payout_delay_days=0)
    _other, other_key = api.merchant(admin, payout_delay_days=0)
    r = api.call("PUT", f"/v1/merchants/{merchant}/bank_account", admin, json=US_BANK)
    assert r.status_code == 200, r.text
    payments = [pay(api, key, amount=1_000 + i, capture=True) for i in range(3)]
    refund = post(api, key, f"/v1/payments/{payments[0]['id']}/refunds", {"amount": 300})
    assert refund.status_code in (200, 201), refund.text
    pay(api, other_key, amount=5_000, capture=True)

    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    time.sleep(1.1)  # the cutoff (whole seconds) must be after the captures
    body = {"business_date": yesterday, "cutoff": int(time.time())}
    support = api.operator("support")
    denied = api.call("POST", "/v1/settlement_runs", support, json=body)
    assert denied.status_code == 403
    future = api.call("POST", "/v1/settlement_runs", admin, json={"business_date": "2999-01-01"})
    assert future.status_code == 400 and future.json()["error"]["param"] == "business_date"
    finance = api.operator("finance")
    started = api.call("POST", "/v1/settlement_runs", finance, json=body,
                       idempotency_key=str(uuid.uuid4()))  # fmt: skip
    assert started.status_code == 201, started.text
    assert started.json()["id"].startswith("sr_")
    run = wait_run(api, finance, started.json()["id"], settings)
    assert run["status"] == "completed", run
    joined = api.call("POST", "/v1/settlement_runs", finance, json=body)
    assert joined.status_code == 200 and joined.json()["id"] == run["id"]

    mine = api.call("GET", "/v1/settlements", key).json()["data"]
    assert len(mine) == 1 and mine[0]["merchant"] == merchant
    s = mine[0]
    assert s["count"] == 4 and s["gross"] == 3_003 and s["refunds"] == 300
    assert s["net"] == s["gross"] - s["refunds"] - s["fees"] == s["payout"]
    assert api.call("GET", f"/v1/settlements/{s['id']}", other_key).status_code == 404
    assert len(api.call("GET", "/v1/settlements", support).json()["data"]) == 2
    items = api.call("GET", f"/v1/settlements/{s['id']}/items", key, params={"limit": 100})
    lines = items.json()["data"]
    assert sum(i["net"] for i in lines) == s["net"] and len(lines) == 4
    assert {i["type"] for i in lines} == {"capture", "refund"}

    (payout,) = api.call("GET", "/v1/payouts", key).json()["data"]
    assert payout["amount"] == s["payout"] and payout["status"] == "in_transit"
    assert api.call("GET", f"/v1/payouts/{payout['id']}", other_key).status_code == 404
    (other_payout,) = api.call("GET", "/v1/payouts", other_key).json()["data"]
    assert other_payout["status"] == "pending" and other_payout["flag"] == "no_bank_account"

    merchant_mark = post(api, key, f"/v1/payouts/{payout['id']}/mark", {"status": "paid"})
    assert merchant_mark.status_code == 403
    paid = post(api, finance, f"/v1/payouts/{payout['id']}/mark", {"status": "paid"})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    again = post(api, finance, f"/v1/payouts/{payout['id']}/mark", {"status": "paid"})
    assert again.status_code == 409


def _events(api: Api, key: str, type_: str) -> list[dict[str, Any]]:
    r = api.call("GET", "/v1/events", key, params={"type": type_, "limit": 100})
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def test_settlement_and_payouts_emit_their_events(api: Api, settings: Settings) -> None:
    """settlement.completed per merchant settlement, payout.created with it, payout.paid and
    payout.failed when marked, settlement_run.completed once as a platform event; each with the
    object as the API shows it right after the change."""
    admin = api.operator("admin")
    merchant, key = api.merchant(admin, payout_delay_days=0)
    other, other_key = api.merchant(admin, payout_delay_days=0)
    for who, owner in ((merchant, key), (other, other_key)):
        put = api.call("PUT", f"/v1/merchants/{who}/bank_account", admin, json=US_BANK)
        assert put.status_code == 200, put.text
        pay(api, owner, amount=2_000, capture=True)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    time.sleep(1.1)
    body = {"business_date": yesterday, "cutoff": int(time.time())}
    run = wait_run(
        api,
        admin,
        api.call("POST", "/v1/settlement_runs", admin, json=body).json()["id"],
        settings,
    )
    assert run["status"] == "completed"

    (settled,) = _events(api, key, "settlement.completed")
    (settlement,) = api.call("GET", "/v1/settlements", key).json()["data"]
    assert settled["data"]["object"] == settlement
    (created,) = _events(api, key, "payout.created")
    assert created["data"]["object"]["settlement"] == settlement["id"]
    assert created["data"]["object"]["status"] == "pending"  # as it was when created
    assert len(_events(api, other_key, "settlement.completed")) == 1
    # The run is the platform's: operators see its event, merchants do not.
    assert _events(api, key, "settlement_run.completed") == []
    (finished,) = _events(api, admin, "settlement_run.completed")
    assert finished["data"]["object"]["id"] == run["id"]
    assert finished["data"]["object"]["status"] == "completed"

    (payout,) = api.call("GET", "/v1/payouts", key).json()["data"]
    (other_payout,) = api.call("GET", "/v1/payouts", other_key).json()["data"]
    post(api, admin, f"/v1/payouts/{payout['id']}/mark", {"status": "paid"})
    post(
        api,
        admin,
        f"/v1/payouts/{other_payout['id']}/mark",
        {"status": "failed", "failure_code": "R01"},
    )
    (paid,) = _events(api, key, "payout.paid")
    assert paid["data"]["object"] == api.call("GET", f"/v1/payouts/{payout['id']}", key).json()
    (failed,) = _events(api, other_key, "payout.failed")
    assert failed["data"]["object"]["failure_code"] == "R01"
    assert _events(api, key, "payout.failed") == []
