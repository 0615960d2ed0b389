"""Real answers of every operation validate against the schemas the OpenAPI document declares
for them: the response models describe the JSON the API sends (no key missing, none extra),
each status answered is declared, and every error is the one `Error` shape."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from clearport.config import Settings
from tests.integration.test_payments_api import CARD
from tests.integration.test_settlement_api import US_BANK, wait_run
from tests.integration.test_vault_api import SEPA
from tests.support import Api

DOC_URI = "urn:clearport:openapi"


@dataclass
class Checker:
    """Calls operations by their documented path and checks each answer against the document."""

    api: Api
    doc: dict[str, Any]
    registry: Registry = field(init=False)
    answered: set[tuple[str, str]] = field(default_factory=set)  # (operation, status)

    def __post_init__(self) -> None:
        resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(DOC_URI, resource)

    def call(
        self,
        method: str,
        template: str,
        key: str | None,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        **path: str,
    ) -> httpx.Response:
        url = template.format(**path)
        if method == "POST" and headers is None:
            headers = {"Idempotency-Key": str(uuid.uuid4())}
        r = self.api.call(
            method, url, key, json=json, params=params, headers=headers, files=files, data=data
        )
        self.check(method, template, r)
        return r

    def check(self, method: str, template: str, r: httpx.Response) -> None:
        operation = self.doc["paths"][template][method.lower()]
        status = str(r.status_code)
        assert status in operation["responses"], (method, template, status, r.text)
        response = self._resolve(operation["responses"][status])
        assert "Request-Id" in r.headers
        content = response.get("content", {})
        if "application/json" in content:
            assert r.headers["content-type"].startswith("application/json"), r.headers
            schema = content["application/json"]["schema"]
            errors = sorted(
                Draft202012Validator(
                    {"$ref": DOC_URI + _pointer(schema)}, registry=self.registry
                ).iter_errors(r.json()),
                key=str,
            )
            assert not errors, (method, template, status, [e.message for e in errors])
        else:
            (media_type,) = content
            assert r.headers["content-type"].startswith(media_type.split(";")[0])
        self.answered.add((f"{method} {template}", status))

    def _resolve(self, response: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in response:
            name = response["$ref"].rsplit("/", 1)[-1]
            return dict(self.doc["components"]["responses"][name])
        return response


def _pointer(schema: dict[str, Any]) -> str:
    """A response schema as a pointer into the document (they are all named components)."""
    ref = schema.get("$ref")
    assert ref is not None and ref.startswith("#/components/schemas/"), schema
    return str(ref)


def _yesterday() -> str:
    return (datetime.now(UTC) - timedelta(days=1)).date().isoformat()


def test_every_operation_answers_as_documented(api: Api, settings: Settings) -> None:
    doc = api.call("GET", "/openapi.json").json()
    c = Checker(api, doc)
    admin = api.operator("admin")

    # Merchants, keys, bank accounts, payment settings (operators).
    merchant = c.call(
        "POST",
        "/v1/merchants",
        admin,
        json={
            "name": "Shop",
            "country": "US",
            "mcc": "5999",
            "default_currency": "usd",
            "payout_delay_days": 0,
            "metadata": {"k": "v"},
        },
    ).json()
    mer = {"merchant_id": merchant["id"]}
    c.call("GET", "/v1/merchants", admin)
    c.call("GET", "/v1/merchants/{merchant_id}", admin, **mer)
    c.call(
        "PATCH",
        "/v1/merchants/{merchant_id}",
        admin,
        json={
            "pricing": {
                "model": "interchange_plus",
                "markup_bps": 20,
                "markup_fixed_minor": {"usd": 5},
            }
        },
        **mer,
    )
    key = c.call("POST", "/v1/merchants/{merchant_id}/keys", admin, **mer).json()["secret"]
    spare = c.call("POST", "/v1/merchants/{merchant_id}/keys", admin, json={}, **mer).json()
    c.call("GET", "/v1/merchants/{merchant_id}/keys", admin, **mer)
    c.call("DELETE", "/v1/merchants/{merchant_id}/keys/{key_id}", admin, key_id=spare["id"], **mer)
    c.call("PUT", "/v1/merchants/{merchant_id}/bank_account", admin, json=US_BANK, **mer)
    c.call("GET", "/v1/merchants/{merchant_id}/bank_account", admin, **mer)
    eu = c.call(
        "POST",
        "/v1/merchants",
        admin,
        json={"name": "Kaffee", "country": "DE", "mcc": "5814", "default_currency": "eur"},
    ).json()
    c.call(
        "PUT", "/v1/merchants/{merchant_id}/bank_account", admin, json=SEPA, merchant_id=eu["id"]
    )
    c.call("GET", "/v1/merchants/{merchant_id}/payment_settings", admin, **mer)
    c.call(
        "PUT",
        "/v1/merchants/{merchant_id}/payment_settings",
        admin,
        json={"require_cvc": False},
        **mer,
    )
    operator_key = c.call("POST", "/v1/operator_keys", admin, json={"role": "support"}).json()
    c.call("DELETE", "/v1/operator_keys/{key_id}", admin, key_id=operator_key["id"])
    c.call("GET", "/v1/audit_events", admin)

    # Tokens, payments, refunds, events (the merchant's key).
    token = c.call(
        "POST",
        "/v1/tokens",
        key,
        json={"card": {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2035}},
    ).json()
    c.call("GET", "/v1/tokens/{token_id}", key, token_id=token["id"])
    card = {"card": dict(CARD)}
    authorized = c.call(
        "POST",
        "/v1/payments",
        key,
        json={"amount": 2599, "currency": "usd", "source": card, "reference": "order-1"},
    ).json()
    c.call("GET", "/v1/payments/{payment_id}", key, payment_id=authorized["id"])
    captured = c.call(
        "POST",
        "/v1/payments/{payment_id}/capture",
        key,
        json={"amount": 2000},
        payment_id=authorized["id"],
    ).json()
    c.call(
        "POST",
        "/v1/payments/{payment_id}/refunds",
        key,
        json={"amount": 500, "reason": "requested"},
        payment_id=captured["id"],
    )
    by_token = c.call(
        "POST",
        "/v1/payments",
        key,
        json={"amount": 100, "currency": "usd", "source": {"token": token["id"], "cvc": "123"}},
    ).json()
    c.call("POST", "/v1/payments/{payment_id}/void", key, payment_id=by_token["id"])
    declined = {"card": {**CARD, "number": "4000000000000002"}}
    c.call(
        "POST",
        "/v1/payments",
        key,
        json={"amount": 100, "currency": "usd", "source": declined, "capture": True},
    )
    c.call("GET", "/v1/payments", key, params={"limit": 100})
    refunds = c.call("GET", "/v1/refunds", key, params={"payment": captured["id"]}).json()
    c.call("GET", "/v1/refunds/{refund_id}", key, refund_id=refunds["data"][0]["id"])

    # Disputes with evidence, adjustments, files.
    dispute = c.call(
        "POST",
        "/v1/disputes",
        admin,
        json={"payment": captured["id"], "amount": 300, "reason": "product_not_received"},
    ).json()
    dp = {"dispute_id": dispute["id"]}
    receipt = c.call(
        "POST",
        "/v1/files",
        key,
        files={"file": ("receipt.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")},
        data={"purpose": "dispute_evidence"},
    ).json()
    c.call("GET", "/v1/files/{file_id}", key, file_id=receipt["id"])
    c.call(
        "POST",
        "/v1/disputes/{dispute_id}",
        key,
        json={"evidence": {"receipt": receipt["id"], "shipping_carrier": "UPS"}, "submit": True},
        **dp,
    )
    c.call("GET", "/v1/disputes", key, params={"payment": captured["id"]})
    c.call("GET", "/v1/disputes/{dispute_id}", key, **dp)
    c.call("POST", "/v1/disputes/{dispute_id}/close", admin, json={"outcome": "won"}, **dp)
    adjustment = c.call(
        "POST",
        "/v1/adjustments",
        admin,
        json={"merchant": merchant["id"], "amount": -150, "currency": "usd", "reason": "fee fix"},
    ).json()
    c.call("GET", "/v1/adjustments", key)
    c.call("GET", "/v1/adjustments/{adjustment_id}", key, adjustment_id=adjustment["id"])

    events = c.call("GET", "/v1/events", key, params={"limit": 100}).json()
    assert {e["data"]["object"]["object"] for e in events["data"]} == {
        "payment",
        "refund",
        "dispute",
    }
    c.call("GET", "/v1/events/{event_id}", key, event_id=events["data"][0]["id"])
    c.call("GET", "/v1/balance", key)
    c.call("GET", "/v1/balance_transactions", admin, params={"merchant": merchant["id"]})

    # Settlement and payouts: a run over yesterday, with a cutoff after the captures.
    time.sleep(1.1)
    run_body = {"business_date": _yesterday(), "cutoff": int(time.time())}
    run = c.call("POST", "/v1/settlement_runs", admin, json=run_body).json()
    wait_run(api, admin, run["id"], settings)
    c.call("GET", "/v1/settlement_runs/{run_id}", admin, run_id=run["id"])
    c.call("POST", "/v1/settlement_runs", admin, json=run_body)  # the same run: 200
    (settlement,) = c.call("GET", "/v1/settlements", key).json()["data"]
    c.call("GET", "/v1/settlements/{settlement_id}", key, settlement_id=settlement["id"])
    c.call("GET", "/v1/settlements/{settlement_id}/items", key, settlement_id=settlement["id"])
    c.call("GET", "/v1/balance_transactions", key)
    (payout,) = c.call("GET", "/v1/payouts", key).json()["data"]
    c.call("GET", "/v1/payouts/{payout_id}", key, payout_id=payout["id"])
    c.call(
        "POST",
        "/v1/payouts/{payout_id}/mark",
        admin,
        json={"status": "paid"},
        payout_id=payout["id"],
    )

    # The events settlement wrote, platform ones included, validate like the payments'.
    every = c.call("GET", "/v1/events", admin, params={"limit": 100}).json()["data"]
    assert {e["data"]["object"]["object"] for e in every} >= {
        "payment",
        "refund",
        "settlement",
        "payout",
        "settlement_run",
    }

    # Webhook endpoints (a public address literal: nothing to resolve; no worker delivers here).
    hook = c.call(
        "POST",
        "/v1/webhook_endpoints",
        key,
        json={"url": "https://1.1.1.1/hooks", "enabled_events": ["payment.captured"]},
    ).json()
    we = {"endpoint_id": hook["id"]}
    c.call("GET", "/v1/webhook_endpoints", key)
    c.call("GET", "/v1/webhook_endpoints/{endpoint_id}", key, **we)
    c.call(
        "PATCH", "/v1/webhook_endpoints/{endpoint_id}", key, json={"enabled_events": ["*"]}, **we
    )
    c.call("POST", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret", key, json={}, **we)
    c.call(
        "POST",
        "/v1/events/{event_id}/redeliver",
        key,
        json={"endpoint": hook["id"]},
        event_id=events["data"][0]["id"],
    )
    c.call("GET", "/v1/webhook_endpoints/{endpoint_id}/deliveries", key, **we)
    c.call("DELETE", "/v1/webhook_endpoints/{endpoint_id}", key, **we)

    # Connectors (operators): credentials shown masked.
    connector = c.call(
        "POST",
        "/v1/connectors",
        admin,
        json={
            "name": "acquirer-x",
            "type": "http_acquirer",
            "settings": {"url": "http://127.0.0.1:9", "api_key": "sk_acquirer_0123456789"},
        },
    ).json()
    assert connector["settings"]["api_key"] == "****6789"
    c.call("GET", "/v1/connectors", admin)
    c.call("GET", "/v1/connectors/{connector_id}", admin, connector_id=connector["id"])
    c.call(
        "PATCH",
        "/v1/connectors/{connector_id}",
        admin,
        json={"status": "disabled"},
        connector_id=connector["id"],
    )

    # Reconciliation (finance): a settlement file with a row Clearport does not know.
    settlement_file = (
        "merchant_reference,type,amount_minor,currency,fee_minor,interchange_minor,"
        "scheme_fee_minor,processor_fee_minor,settlement_date,dispute_case_id\n"
        f"att_01JD3ZQ5N1T8W6X9Y2A4B7C0ZZ,capture,1000,USD,0,0,0,0,{_yesterday()},\n"
    )
    uploaded = c.call(
        "POST",
        "/v1/files",
        admin,
        files={"file": ("settlement.csv", settlement_file.encode(), "text/csv")},
        data={"purpose": "reconciliation"},
    ).json()
    reconciled = c.call(
        "POST",
        "/v1/reconciliation_runs",
        admin,
        json={"connector": "simulator", "file": uploaded["id"]},
    ).json()
    c.call("GET", "/v1/reconciliation_runs", admin)
    c.call("GET", "/v1/reconciliation_runs/{run_id}", admin, run_id=reconciled["id"])
    queue = c.call("GET", "/v1/reconciliation_exceptions", admin, params={"status": "open"})
    rcx = {"exception_id": queue.json()["data"][0]["id"]}
    c.call("GET", "/v1/reconciliation_exceptions/{exception_id}", admin, **rcx)
    c.call(
        "POST",
        "/v1/reconciliation_exceptions/{exception_id}/resolve",
        admin,
        json={"action": "accept", "note": "Not ours: the processor's error"},
        **rcx,
    )

    # Routing and risk rule sets (operators), and a replay of what happened so far.
    routing = c.call(
        "POST",
        "/v1/routing_rule_sets",
        admin,
        json={
            "rules": [
                {
                    "name": "debit",
                    "when": {"funding": "debit"},
                    "then": {"connectors": ["simulator"]},
                },
                {
                    "name": "split",
                    "when": {"currency": "usd", "amount_gte": 100},
                    "then": {"split": [{"connector": "simulator", "weight": 1}]},
                },
            ],
            "default": {"connectors": ["simulator"]},
        },
    ).json()
    rrs = {"rule_set_id": routing["id"]}
    c.call("GET", "/v1/routing_rule_sets", admin)
    c.call("GET", "/v1/routing_rule_sets/{rule_set_id}", admin, **rrs)
    c.call("POST", "/v1/routing_rule_sets/{rule_set_id}/activate", admin, **rrs)
    risk = c.call(
        "POST",
        "/v1/risk_rule_sets",
        admin,
        json={
            "rules": [
                {
                    "name": "bins",
                    "mode": "dry_run",
                    "kind": "block_list",
                    "field": "bin",
                    "values": ["400000"],
                },
                {
                    "name": "limit",
                    "mode": "dry_run",
                    "kind": "amount_limit",
                    "currency": "usd",
                    "max_amount": 10,
                },
                {
                    "name": "fast",
                    "mode": "dry_run",
                    "kind": "velocity",
                    "per": "merchant",
                    "window_s": 60,
                    "max_amount": 1,
                    "currency": "usd",
                },
            ]
        },
    ).json()
    rks = {"rule_set_id": risk["id"]}
    c.call("GET", "/v1/risk_rule_sets", admin)
    c.call("GET", "/v1/risk_rule_sets/{rule_set_id}", admin, **rks)
    c.call("POST", "/v1/risk_rule_sets/{rule_set_id}/activate", admin, **rks)
    screened = c.call(
        "POST", "/v1/payments", key, json={"amount": 2599, "currency": "usd", "source": card}
    ).json()
    assert screened["risk"]["mode"] == "dry_run" and screened["routing"]["rule"] == "split"
    now = int(time.time())
    c.call(
        "POST",
        "/v1/routing_simulations",
        admin,
        json={
            "routing_rule_set": routing["id"],
            "risk_rule_set": risk["id"],
            "pricing": {
                "model": "interchange_plus",
                "markup_bps": 20,
                "markup_fixed_minor": {"usd": 5},
            },
            "since": now - 3600,
            "until": now + 1,
        },
    )

    # Health, readiness and metrics (no key).
    for path in ("/healthz", "/readyz", "/metrics"):
        c.call("GET", path, None)

    # Errors: each the one Error shape, on a status the operation declares.
    c.call("GET", "/v1/payments", None)  # 401
    c.call("GET", "/v1/payments", key, params={"limit": 0})  # 400
    c.call("GET", "/v1/merchants", key)  # 403
    c.call("GET", "/v1/payments/{payment_id}", key, payment_id="pay_" + "0" * 26)  # 404
    c.call(
        "POST", "/v1/payments/{payment_id}/void", key, payment_id=authorized["id"]
    )  # 409: captured
    reused = {"Idempotency-Key": str(uuid.uuid4())}
    c.call("POST", "/v1/payments/{payment_id}/void", key, payment_id=by_token["id"], headers=reused)
    c.call(
        "POST", "/v1/payments/{payment_id}/capture", key, payment_id=by_token["id"], headers=reused
    )  # 422: the key was used for another request

    successes = {op for op, status in c.answered if status.startswith("2")}
    documented = {
        f"{method.upper()} {path}" for path, ops in doc["paths"].items() for method in ops
    }
    assert documented - successes == set(), "operations never answered with success"
    assert {status for _, status in c.answered} >= {"400", "401", "403", "404", "409", "422"}
