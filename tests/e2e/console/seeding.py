"""A seeded platform for the console's pages: captures, a refund, a decline, disputes and
reconciliation exceptions (the reconciliation tests' day), a settlement run with its payouts,
a webhook endpoint with deliveries, and a merchant and a payment whose names are XSS payloads."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime

from clearport.access.domain import Origin
from clearport.config import Settings
from tests.integration.test_payments_api import CARD, post
from tests.integration.test_reconciliation import a_day, planted, reconcile
from tests.integration.test_settlement_api import US_BANK
from tests.money_support import settle
from tests.support import Api
from tests.webhook_support import Receiver, deliver_all, merchant, webhook_container

XSS_NAME = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2"> & Sons'
XSS_REFERENCE = "\"'><script>window.__xss=3</script>"
XSS_METADATA = '<b onmouseover="window.__xss=4">bold</b>'


@dataclass
class Platform:
    admin: str
    finance: str
    support: str
    merchant: str
    merchant_key: str
    xss_merchant: str
    xss_payment: str
    declined_payment: str
    dispute: str
    endpoint: str


def seed(api: Api, settings: Settings, receiver: Receiver) -> Platform:
    day = a_day(api)
    ran = reconcile(api, day.finance, day.connector, planted(day))
    assert ran.status_code == 201, ran.text
    admin = api.operator("admin")
    assert (
        api.call(
            "PUT", f"/v1/merchants/{day.merchant}/bank_account", admin, json=US_BANK
        ).status_code
        == 200
    )
    endpoint = _webhook_endpoint(settings, api.database_url, day.merchant, receiver.url)
    declined = post(api, day.key, "/v1/payments", {
        "amount": 1234, "currency": "usd", "capture": True, "reference": "order-declined",
        "source": {"card": {**CARD, "number": "4000000000000002"}},
    })  # fmt: skip
    assert declined.status_code == 201 and declined.json()["status"] == "declined", declined.text
    xss_merchant, xss_key = api.merchant(admin, name=XSS_NAME)
    xss_payment = post(api, xss_key, "/v1/payments", {
        "amount": 4200, "currency": "usd", "capture": True, "reference": XSS_REFERENCE,
        "metadata": {"note": XSS_METADATA}, "source": {"card": dict(CARD)},
    })  # fmt: skip
    assert xss_payment.status_code == 201, xss_payment.text
    settle(api, admin, 1, settings)
    payouts = api.call("GET", "/v1/payouts", admin, params={"limit": 100}).json()["data"]
    # The file that takes the payouts is the one sent for their arrival date.
    send_on = max(datetime.fromtimestamp(p["arrival_date"], UTC).date() for p in payouts)
    _worker_steps(settings, api.database_url, send_on)
    disputes = api.call("GET", "/v1/disputes", admin, params={"status": "needs_response"}).json()
    return Platform(
        admin=admin,
        finance=day.finance,
        support=api.operator("support"),
        merchant=day.merchant,
        merchant_key=day.key,
        xss_merchant=xss_merchant,
        xss_payment=xss_payment.json()["id"],
        declined_payment=declined.json()["id"],
        dispute=disputes["data"][0]["id"],
        endpoint=endpoint,
    )


def _webhook_endpoint(settings: Settings, database_url: str, merchant_id: str, url: str) -> str:
    """An endpoint on the loopback receiver (plain HTTP: the service's loopback allowance, which
    the API's https-only URL pattern does not offer); its id."""

    async def main() -> str:
        async with webhook_container(settings, database_url) as container:
            issued = await container.webhooks.create_endpoint(
                merchant(merchant_id), Origin(), url=url, enabled_events=["*"]
            )
            return issued.endpoint.id

    return asyncio.run(main())


def _worker_steps(settings: Settings, database_url: str, send_on: date) -> None:
    """What the worker does: relay the events to the endpoints and deliver them; seal the
    transaction log and sign a checkpoint; write the payout file sent on `send_on`."""

    async def main() -> None:
        async with webhook_container(settings, database_url) as container:
            await deliver_all(container)
            await container.chains.seal("txlog", 100_000, checkpoint_now=True)
            now = container.clock.now()
            await container.settlement.write_payout_files(now.date(), now, send_on)

    asyncio.run(main())
