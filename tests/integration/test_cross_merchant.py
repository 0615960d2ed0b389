"""The isolation matrix: for every API path that takes an id, merchant B's key on merchant A's
object answers exactly what a missing object answers (404 resource_missing), and operator-only
paths answer 403 to merchant keys. Paths are read from the OpenAPI document, so a new endpoint
that takes an id fails this test until it is placed in the matrix."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from clearport.config import Settings
from tests.integration.test_payments_api import pay, post
from tests.integration.test_settlement_api import US_BANK, wait_run
from tests.support import Api

# Paths only operators may call: a merchant key gets 403 whatever the id.
OPERATOR_ONLY = {
    "/v1/merchants/{merchant_id}",
    "/v1/merchants/{merchant_id}/keys",
    "/v1/merchants/{merchant_id}/keys/{key_id}",
    "/v1/merchants/{merchant_id}/bank_account",
    "/v1/merchants/{merchant_id}/payment_settings",
    "/v1/operator_keys/{key_id}",
    "/v1/settlement_runs/{run_id}",
    "/v1/payouts/{payout_id}/mark",
    "/v1/disputes/{dispute_id}/close",
    "/v1/connectors/{connector_id}",
    "/v1/reconciliation_runs/{run_id}",
    "/v1/reconciliation_exceptions/{exception_id}",
    "/v1/reconciliation_exceptions/{exception_id}/resolve",
    "/v1/routing_rule_sets/{rule_set_id}",
    "/v1/routing_rule_sets/{rule_set_id}/activate",
    "/v1/risk_rule_sets/{rule_set_id}",
    "/v1/risk_rule_sets/{rule_set_id}/activate",
}
# Which object of merchant A each path parameter names.
PARAM_KIND = {
    "token_id": "tok",
    "payment_id": "pay",
    "refund_id": "rfd",
    "event_id": "evt",
    "settlement_id": "stl",
    "payout_id": "po",
    "endpoint_id": "we",
    "dispute_id": "dp",
    "adjustment_id": "adj",
    "file_id": "file",
}
BODIES: dict[tuple[str, str], Any] = {
    ("post", "/v1/payments/{payment_id}/capture"): {},
    ("post", "/v1/payments/{payment_id}/void"): None,
    ("post", "/v1/payments/{payment_id}/refunds"): {"amount": 1},
    ("patch", "/v1/merchants/{merchant_id}"): {"name": "Renamed"},
    ("put", "/v1/merchants/{merchant_id}/bank_account"): US_BANK,
    ("put", "/v1/merchants/{merchant_id}/payment_settings"): {"require_cvc": True},
    ("post", "/v1/payouts/{payout_id}/mark"): {"status": "paid"},
    ("patch", "/v1/webhook_endpoints/{endpoint_id}"): {"description": "Renamed"},
    ("post", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret"): {},
    ("post", "/v1/events/{event_id}/redeliver"): {"endpoint": "we_0000000000ZZZZZZZZZZZZZZZZ"},
    ("post", "/v1/disputes/{dispute_id}"): {"evidence": {"product_description": "Coffee"}},
    ("post", "/v1/disputes/{dispute_id}/close"): {"outcome": "won"},
    ("patch", "/v1/connectors/{connector_id}"): {"status": "disabled"},
    ("post", "/v1/reconciliation_exceptions/{exception_id}/resolve"): {
        "action": "accept",
        "note": "x",
    },
}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
MISSING_SUFFIX = "_0000000000ZZZZZZZZZZZZZZZZ"


def _objects_of_merchant_a(
    api: Api, settings: Settings, admin: str
) -> tuple[dict[str, str], str, str]:
    merchant_a, key_a = api.merchant(admin, payout_delay_days=0)
    assert (
        api.call("PUT", f"/v1/merchants/{merchant_a}/bank_account", admin, json=US_BANK).status_code
        == 200
    )
    token = api.call(
        "POST",
        "/v1/tokens",
        key_a,
        json={"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035}},
    )
    assert token.status_code == 201, token.text
    authorized = pay(api, key_a)
    captured = pay(api, key_a, capture=True)
    refund = post(api, key_a, f"/v1/payments/{captured['id']}/refunds", {"amount": 100})
    assert refund.status_code in (200, 201), refund.text
    dispute = post(
        api, admin, "/v1/disputes", {"payment": captured["id"], "amount": 100, "reason": "general"}
    )
    assert dispute.status_code == 201, dispute.text
    adjustment = post(
        api,
        admin,
        "/v1/adjustments",
        {"merchant": merchant_a, "amount": 50, "currency": "usd", "reason": "goodwill"},
    )
    assert adjustment.status_code == 201, adjustment.text
    upload = api.call(
        "POST",
        "/v1/files",
        key_a,
        files={"file": ("receipt.png", PNG, "image/png")},
        data={"purpose": "dispute_evidence"},
    )
    assert upload.status_code == 201, upload.text
    events = api.call("GET", "/v1/events", key_a).json()["data"]
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    time.sleep(1.1)
    run = api.call(
        "POST",
        "/v1/settlement_runs",
        admin,
        json={"business_date": yesterday, "cutoff": int(time.time())},
    )
    assert run.status_code == 201, run.text
    assert wait_run(api, admin, run.json()["id"], settings)["status"] == "completed"
    (settlement,) = api.call("GET", "/v1/settlements", key_a).json()["data"]
    (payout,) = api.call("GET", "/v1/payouts", key_a).json()["data"]
    endpoint = api.call(
        "POST",
        "/v1/webhook_endpoints",
        key_a,
        json={"url": "https://1.1.1.1/hooks", "enabled_events": ["*"]},
    )
    assert endpoint.status_code == 201, endpoint.text
    ids = {
        "tok": token.json()["id"],
        "pay": authorized["id"],
        "rfd": refund.json()["id"],
        "evt": events[0]["id"],
        "stl": settlement["id"],
        "po": payout["id"],
        "we": endpoint.json()["id"],
        "dp": dispute.json()["id"],
        "adj": adjustment.json()["id"],
        "file": upload.json()["id"],
    }
    return ids, merchant_a, key_a


def _shape(response: httpx.Response) -> dict[str, Any]:
    """The error without what differs per request (its id and the echoed object id)."""
    error = response.json()["error"]
    return {k: v for k, v in error.items() if k not in ("request_id", "message")}


def _fill(path: str, params: dict[str, str]) -> str:
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    return path


def test_cross_merchant_matrix(api: Api, settings: Settings) -> None:
    admin = api.operator("admin")
    ids, merchant_a, key_a = _objects_of_merchant_a(api, settings, admin)
    _merchant_b, key_b = api.merchant(admin)
    paths = api.call("GET", "/openapi.json").json()["paths"]
    checked = 0
    for path, operations in paths.items():
        if "{" not in path:
            continue
        for method in operations:
            if path in OPERATOR_ONLY:
                params = {
                    "merchant_id": merchant_a,
                    "key_id": "key" + MISSING_SUFFIX,
                    "run_id": "sr" + MISSING_SUFFIX,
                    "payout_id": ids["po"],
                    "connector_id": "con" + MISSING_SUFFIX,
                    "exception_id": "rcx" + MISSING_SUFFIX,
                    # Roles are checked before parameters: the kind of id does not matter.
                    "rule_set_id": "rrs" + MISSING_SUFFIX,
                }
                response = api.call(
                    method.upper(), _fill(path, params), key_b, json=BODIES.get((method, path))
                )
                assert response.status_code == 403, (method, path, response.text)
                checked += 1
                continue
            names = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
            assert all(n in PARAM_KIND for n in names), f"{path}: add it to the matrix"
            real = {n: ids[PARAM_KIND[n]] for n in names}
            missing = {n: PARAM_KIND[n] + MISSING_SUFFIX for n in names}
            body = BODIES.get((method, path))
            theirs = api.call(method.upper(), _fill(path, real), key_b, json=body)
            absent = api.call(method.upper(), _fill(path, missing), key_b, json=body)
            assert theirs.status_code == 404, (method, path, theirs.text)
            assert _shape(theirs) == _shape(absent), (method, path)
            # Same words too, once the id the caller sent is set aside.
            message = theirs.json()["error"]["message"]
            for name in names:
                message = message.replace(real[name], missing[name])
            assert message == absent.json()["error"]["message"], (method, path)
            # A's own key still reaches the object (the 404 was isolation, not a bad path).
            if method == "get":
                assert api.call("GET", _fill(path, real), key_a).status_code == 200, path
            checked += 1
    assert checked >= 15
    # B's lists never show A's objects.
    for listing in (
        "/v1/payments",
        "/v1/refunds",
        "/v1/events",
        "/v1/settlements",
        "/v1/payouts",
        "/v1/balance_transactions",
        "/v1/webhook_endpoints",
        "/v1/disputes",
        "/v1/adjustments",
    ):
        body = api.call("GET", listing, key_b, params={"limit": 100}).text
        assert all(object_id not in body for object_id in ids.values()), listing
