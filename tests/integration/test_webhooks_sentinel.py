"""Sentinel scan over webhooks: a card number and CVC sent with payments, and the endpoint's
signing secret, are in no webhook body or header, no delivery record, no log line, and (the
secret) nowhere in the database in clear: only sealed by the vault."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from clearport.access.domain import Origin
from clearport.config import Settings
from tests.sentinel import SentinelScan
from tests.support import Api
from tests.webhook_support import deliver_all, merchant, receiving, webhook_container

PAN = "5555555555554444"
CVC = "737"


async def test_no_card_data_or_secret_in_webhooks(
    api: Api, settings: Settings, database_url: str, log_file: Path
) -> None:
    merchant_id, key = api.merchant()
    with receiving(plan=["500"]) as receiver:
        async with webhook_container(settings, database_url) as c:
            issued = await c.webhooks.create_endpoint(
                merchant(merchant_id), Origin("127.0.0.1"), url=receiver.url, enabled_events=["*"]
            )
            card = {"number": PAN, "exp_month": 12, "exp_year": 2030, "cvc": CVC}
            paid = api.call(
                "POST",
                "/v1/payments",
                key,
                json={"amount": 900, "currency": "usd", "source": {"card": card}, "capture": True},
                idempotency_key=str(uuid.uuid4()),
            )
            assert paid.status_code == 201, paid.text
            await deliver_all(c)  # the first answer is a 500: an attempt with an error
            rotated = await c.webhooks.rotate_secret(
                merchant(merchant_id), Origin("127.0.0.1"), issued.endpoint.id
            )
            await c.webhooks.redeliver(
                merchant(merchant_id),
                Origin("127.0.0.1"),
                json.loads(receiver.received[0].body)["id"],
                issued.endpoint.id,
            )
            await deliver_all(c)
    assert len(receiver.received) == 2  # the 500, then the redelivery's 200
    sent = {
        f"webhook {i}": json.dumps(r.headers) + "\n" + r.body.decode()
        for i, r in enumerate(receiver.received)
    }
    assert '"last4":"4444"' in sent["webhook 0"]  # the scan does see the payment in it
    scan = SentinelScan()
    scan.add_pan(PAN)
    scan.add_cvc(CVC, PAN)
    scan.add_secret(issued.secret)
    scan.add_secret(rotated.secret)
    sources = scan.assert_clean(database_url, log_file, sent)
    for table in ("webhook_endpoints", "webhook_deliveries", "webhook_delivery_attempts"):
        assert f"table {table}" in sources
    assert issued.endpoint.id in sources["table webhook_delivery_attempts"]
