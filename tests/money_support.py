"""Shared by the money tests: balances and balance transactions over HTTP, the check that they
agree, disputes, settlement runs on chosen dates."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.config import Settings
from clearport.settlement.service.payouts import ReturnsImport
from clearport.wiring import build_container
from tests.integration.test_payments_api import CARD, post
from tests.integration.test_settlement_api import wait_run
from tests.ledger_support import assert_zero_sum
from tests.support import Api

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def capture(api: Api, key: str, amount: int, currency: str = "usd") -> dict[str, Any]:
    body = {"amount": amount, "currency": currency, "source": {"card": dict(CARD)}, "capture": True}
    r = post(api, key, "/v1/payments", body)
    assert r.status_code == 201 and r.json()["status"] == "captured", r.text
    return dict(r.json())


def dispute(api: Api, admin: str, payment: str, amount: int, **extra: Any) -> dict[str, Any]:
    r = post(
        api,
        admin,
        "/v1/disputes",
        {"payment": payment, "amount": amount, "reason": "fraudulent", **extra},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def balance(api: Api, key: str) -> dict[str, dict[str, int]]:
    """{kind: {currency: amount}} of GET /v1/balance, zero amounts left out."""
    body = api.call("GET", "/v1/balance", key).json()
    return {
        kind: {line["currency"]: line["amount"] for line in body[kind] if line["amount"]}
        for kind in ("pending", "available", "reserve")
    }


def balance_transactions(api: Api, key: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = api.call("GET", "/v1/balance_transactions", key, params=params).json()
        found += page["data"]
        if not page["has_more"]:
            return found
        params["starting_after"] = page["data"][-1]["id"]


def assert_list_agrees_with_balance(api: Api, key: str) -> None:
    """The balance transactions of each status add up to the balance of that name."""
    sums: dict[str, dict[str, int]] = {"pending": defaultdict(int), "available": defaultdict(int)}
    for t in balance_transactions(api, key):
        sums[t["status"]][t["currency"]] += t["amount"]
    shown = balance(api, key)
    for status in ("pending", "available"):
        listed = {c: v for c, v in sums[status].items() if v}
        held = {c: v for c, v in shown[status].items() if v}
        assert listed == held, (status, listed, held)


def settle(api: Api, admin: str, days_ago: int, settings: Settings) -> dict[str, Any]:
    """A run for the date `days_ago` days back, its cutoff now (after what came before)."""
    time.sleep(1.05)  # the cutoff is whole seconds: after everything so far
    business_date = (datetime.now(UTC) - timedelta(days=days_ago)).date().isoformat()
    body = {"business_date": business_date, "cutoff": int(time.time())}
    started = post(api, admin, "/v1/settlement_runs", body)
    assert started.status_code == 201, started.text
    run = wait_run(api, admin, started.json()["id"], settings)
    assert run["status"] == "completed", run
    return run


def import_returns(settings: Settings, database_url: str, data: bytes) -> ReturnsImport:
    """What `clearport payouts import-returns FILE` does, in a container of its own."""

    async def main() -> ReturnsImport:
        container = build_container(settings, database_url)
        await container.start(listen=False)
        try:
            return await container.settlement.import_returns(SYSTEM_CLI, Origin(), data)
        finally:
            await container.stop()

    return asyncio.run(main())


def settled(api: Api, key: str) -> list[dict[str, Any]]:
    """The merchant's settlements, oldest first."""
    return list(reversed(api.call("GET", "/v1/settlements", key).json()["data"]))


def items(api: Api, key: str, settlement: str) -> list[dict[str, Any]]:
    r = api.call("GET", f"/v1/settlements/{settlement}/items", key, params={"limit": 100})
    return list(r.json()["data"])


def zero_sum(api: Api) -> None:
    assert_zero_sum(api.database_url)
