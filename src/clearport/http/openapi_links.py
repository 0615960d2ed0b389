"""Links between operations: from an answer to the operations a client can call next with it.

A stateful fuzzer (and a reader of the document) follows them: create a payment, then get,
capture, void or refund it by its `id`. Operations are named by method and path, as the
document lists them; `add_links` resolves each to its operationId and fails at start-up if an
operation or a parameter named here does not exist. Objects that no POST creates (settlements,
payouts, events) are reached from the first item of their list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clearport.core.errors import InvariantViolation


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    target: str  # "METHOD /path", as the document lists it
    parameters: dict[str, str]  # target parameter -> runtime expression over the answer


def _to(name: str, target: str, **parameters: str) -> Link:
    return Link(name, target, parameters)


ID = "$response.body#/id"
FIRST_ID = "$response.body#/data/0/id"

PAYMENT = (
    _to("GetPayment", "GET /v1/payments/{payment_id}", payment_id=ID),
    _to("CapturePayment", "POST /v1/payments/{payment_id}/capture", payment_id=ID),
    _to("VoidPayment", "POST /v1/payments/{payment_id}/void", payment_id=ID),
    _to("RefundPayment", "POST /v1/payments/{payment_id}/refunds", payment_id=ID),
    _to("ListPaymentRefunds", "GET /v1/refunds", payment=ID),
    _to("ListPaymentEvents", "GET /v1/events", object=ID),
    _to("GetPaymentToken", "GET /v1/tokens/{token_id}", token_id="$response.body#/token"),
)
REFUND = (
    _to("GetRefund", "GET /v1/refunds/{refund_id}", refund_id=ID),
    _to(
        "GetRefundedPayment", "GET /v1/payments/{payment_id}", payment_id="$response.body#/payment"
    ),
)
MERCHANT = (
    _to("GetMerchant", "GET /v1/merchants/{merchant_id}", merchant_id=ID),
    _to("UpdateMerchant", "PATCH /v1/merchants/{merchant_id}", merchant_id=ID),
    _to("CreateMerchantKey", "POST /v1/merchants/{merchant_id}/keys", merchant_id=ID),
    _to("ListMerchantKeys", "GET /v1/merchants/{merchant_id}/keys", merchant_id=ID),
    # Not GET bank_account: a new merchant has none until it is put (that link starts there).
    _to("PutBankAccount", "PUT /v1/merchants/{merchant_id}/bank_account", merchant_id=ID),
    _to("GetPaymentSettings", "GET /v1/merchants/{merchant_id}/payment_settings", merchant_id=ID),
    _to("PutPaymentSettings", "PUT /v1/merchants/{merchant_id}/payment_settings", merchant_id=ID),
    _to("GetMerchantBalance", "GET /v1/balance", merchant=ID),
    _to("ListMerchantBalanceTransactions", "GET /v1/balance_transactions", merchant=ID),
)
OF_MERCHANT = "$response.body#/merchant"
MERCHANT_KEY = (
    _to(
        "RevokeMerchantKey",
        "DELETE /v1/merchants/{merchant_id}/keys/{key_id}",
        merchant_id=OF_MERCHANT,
        key_id=ID,
    ),
    _to("ListMerchantKeys", "GET /v1/merchants/{merchant_id}/keys", merchant_id=OF_MERCHANT),
)
SETTLEMENT_RUN = (_to("GetSettlementRun", "GET /v1/settlement_runs/{run_id}", run_id=ID),)
PAYOUT = (
    _to("MarkPayout", "POST /v1/payouts/{payout_id}/mark", payout_id=ID),
    _to(
        "GetPayoutSettlement",
        "GET /v1/settlements/{settlement_id}",
        settlement_id="$response.body#/settlement",
    ),
)
WEBHOOK_ENDPOINT = (
    _to("GetWebhookEndpoint", "GET /v1/webhook_endpoints/{endpoint_id}", endpoint_id=ID),
    _to("UpdateWebhookEndpoint", "PATCH /v1/webhook_endpoints/{endpoint_id}", endpoint_id=ID),
    _to(
        "RotateWebhookSecret",
        "POST /v1/webhook_endpoints/{endpoint_id}/rotate_secret",
        endpoint_id=ID,
    ),
    _to(
        "ListWebhookDeliveries",
        "GET /v1/webhook_endpoints/{endpoint_id}/deliveries",
        endpoint_id=ID,
    ),
    _to("DeleteWebhookEndpoint", "DELETE /v1/webhook_endpoints/{endpoint_id}", endpoint_id=ID),
)
DISPUTE = (
    _to("GetDispute", "GET /v1/disputes/{dispute_id}", dispute_id=ID),
    _to("UpdateDispute", "POST /v1/disputes/{dispute_id}", dispute_id=ID),
    _to("CloseDispute", "POST /v1/disputes/{dispute_id}/close", dispute_id=ID),
    _to(
        "GetDisputedPayment", "GET /v1/payments/{payment_id}", payment_id="$response.body#/payment"
    ),
    _to("ListDisputeEvents", "GET /v1/events", object=ID),
)
ADJUSTMENT = (_to("GetAdjustment", "GET /v1/adjustments/{adjustment_id}", adjustment_id=ID),)

CONNECTOR = (
    _to("GetConnector", "GET /v1/connectors/{connector_id}", connector_id=ID),
    _to("UpdateConnector", "PATCH /v1/connectors/{connector_id}", connector_id=ID),
)

# (operation, status) -> the links of that answer.
LINKS: dict[tuple[str, str], tuple[Link, ...]] = {
    ("POST /v1/payments", "201"): PAYMENT,
    ("GET /v1/payments/{payment_id}", "200"): PAYMENT,
    ("POST /v1/payments/{payment_id}/capture", "200"): PAYMENT,
    ("POST /v1/payments/{payment_id}/void", "200"): PAYMENT,
    ("POST /v1/payments/{payment_id}/refunds", "201"): REFUND,
    ("GET /v1/refunds/{refund_id}", "200"): REFUND,
    ("POST /v1/tokens", "201"): (_to("GetToken", "GET /v1/tokens/{token_id}", token_id=ID),),
    ("POST /v1/merchants", "201"): MERCHANT,
    ("GET /v1/merchants/{merchant_id}", "200"): MERCHANT,
    ("PATCH /v1/merchants/{merchant_id}", "200"): MERCHANT,
    ("POST /v1/merchants/{merchant_id}/keys", "201"): MERCHANT_KEY,
    ("POST /v1/operator_keys", "201"): (
        _to("RevokeOperatorKey", "DELETE /v1/operator_keys/{key_id}", key_id=ID),
    ),
    ("PUT /v1/merchants/{merchant_id}/bank_account", "200"): (
        _to(
            "GetBankAccount",
            "GET /v1/merchants/{merchant_id}/bank_account",
            merchant_id=OF_MERCHANT,
        ),
    ),
    ("PUT /v1/merchants/{merchant_id}/payment_settings", "200"): (
        _to(
            "GetPaymentSettings",
            "GET /v1/merchants/{merchant_id}/payment_settings",
            merchant_id=OF_MERCHANT,
        ),
    ),
    ("POST /v1/settlement_runs", "201"): SETTLEMENT_RUN,
    ("POST /v1/settlement_runs", "200"): SETTLEMENT_RUN,
    ("GET /v1/settlements", "200"): (
        _to("GetSettlement", "GET /v1/settlements/{settlement_id}", settlement_id=FIRST_ID),
        _to(
            "ListSettlementItems",
            "GET /v1/settlements/{settlement_id}/items",
            settlement_id=FIRST_ID,
        ),
    ),
    ("GET /v1/settlements/{settlement_id}", "200"): (
        _to("ListSettlementItems", "GET /v1/settlements/{settlement_id}/items", settlement_id=ID),
    ),
    ("GET /v1/payouts", "200"): (
        _to("GetPayout", "GET /v1/payouts/{payout_id}", payout_id=FIRST_ID),
    ),
    ("GET /v1/payouts/{payout_id}", "200"): PAYOUT,
    ("GET /v1/events", "200"): (_to("GetEvent", "GET /v1/events/{event_id}", event_id=FIRST_ID),),
    ("POST /v1/webhook_endpoints", "201"): WEBHOOK_ENDPOINT,
    ("GET /v1/webhook_endpoints/{endpoint_id}", "200"): WEBHOOK_ENDPOINT,
    ("PATCH /v1/webhook_endpoints/{endpoint_id}", "200"): WEBHOOK_ENDPOINT,
    ("POST /v1/webhook_endpoints/{endpoint_id}/rotate_secret", "200"): WEBHOOK_ENDPOINT,
    ("GET /v1/webhook_endpoints", "200"): (
        _to(
            "GetWebhookEndpoint",
            "GET /v1/webhook_endpoints/{endpoint_id}",
            endpoint_id=FIRST_ID,
        ),
    ),
    ("POST /v1/disputes", "201"): DISPUTE,
    ("GET /v1/disputes/{dispute_id}", "200"): DISPUTE,
    ("POST /v1/disputes/{dispute_id}", "200"): DISPUTE,
    ("GET /v1/disputes", "200"): (
        _to("GetDispute", "GET /v1/disputes/{dispute_id}", dispute_id=FIRST_ID),
    ),
    ("POST /v1/adjustments", "201"): ADJUSTMENT,
    ("GET /v1/adjustments", "200"): (
        _to("GetAdjustment", "GET /v1/adjustments/{adjustment_id}", adjustment_id=FIRST_ID),
    ),
    ("POST /v1/files", "201"): (_to("GetFile", "GET /v1/files/{file_id}", file_id=ID),),
    ("POST /v1/connectors", "201"): CONNECTOR,
    ("GET /v1/connectors/{connector_id}", "200"): CONNECTOR,
    ("PATCH /v1/connectors/{connector_id}", "200"): CONNECTOR,
}


def _operation(doc: dict[str, Any], named: str) -> dict[str, Any]:
    method, path = named.split(" ", 1)
    operation = doc["paths"].get(path, {}).get(method.lower())
    if operation is None:
        raise InvariantViolation(f"a link names {named}, which is not in the document")
    return dict(operation)


def add_links(doc: dict[str, Any]) -> None:
    for (source, status), links in LINKS.items():
        response = _operation(doc, source)["responses"].get(status)
        if response is None:
            raise InvariantViolation(f"{source} has no {status} answer to link from")
        for link in links:
            target = _operation(doc, link.target)
            names = {p.get("name") for p in target.get("parameters", [])}
            if not set(link.parameters) <= names:
                raise InvariantViolation(f"{link.name} sets parameters {link.target} lacks")
            response.setdefault("links", {})[link.name] = {
                "operationId": target["operationId"],
                "parameters": link.parameters,
            }
