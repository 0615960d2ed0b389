"""How the API shows payments, refunds and events: pure functions over the domain records.

The payment services need the same representation inside their transactions (an event carries
the object as shown, and the stored idempotent response is what a retry gets back), so
`ApiRepresentation` implements their port (`payments.ports.Representation`) and `wiring` hands
it to them. Standard library, core and domain modules only (an import contract).
"""

from __future__ import annotations

import json
from typing import Any

from clearport.core.clock import unix_seconds
from clearport.events.domain import Event
from clearport.payments.domain import Payment, Refund


def payment_json(p: Payment) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "payment",
        "status": str(p.status),
        "amount": p.amount,
        "currency": p.currency,
        "amount_captured": p.amount_captured,
        "amount_refunded": p.amount_refunded,
        "card": {
            "brand": p.card_brand,
            "bin": p.card_bin,
            "last4": p.card_last4,
            "exp_month": p.card_exp_month,
            "exp_year": p.card_exp_year,
            "fingerprint": p.card_fingerprint,
        },
        "token": p.token_id,
        "auth_code": p.auth_code,
        "network_reference": p.network_reference,
        "decline_code": p.decline_code,
        "connector": p.connector,
        "routing": p.routing,
        "reference": p.reference,
        "metadata": p.metadata,
        "created": unix_seconds(p.created_at),
        "authorized": unix_seconds(p.authorized_at),
        "captured": unix_seconds(p.captured_at),
    }


def refund_json(r: Refund) -> dict[str, Any]:
    return {
        "id": r.id,
        "object": "refund",
        "payment": r.payment_id,
        "amount": r.amount,
        "currency": r.currency,
        "status": str(r.status),
        "reason": r.reason,
        "created": unix_seconds(r.created_at),
    }


def event_json(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "object": "event",
        "type": e.type,
        "created": unix_seconds(e.created_at),
        "data": e.data,
    }


def stored_response_body(shown: dict[str, Any]) -> bytes:
    """The bytes kept for an idempotent replay: compact JSON, ASCII-escaped."""
    return json.dumps(shown, separators=(",", ":")).encode()


class ApiRepresentation:
    """`payments.ports.Representation`, as the API shows things."""

    def payment(self, payment: Payment) -> dict[str, Any]:
        return payment_json(payment)

    def refund(self, refund: Refund) -> dict[str, Any]:
        return refund_json(refund)

    def response_body(self, shown: dict[str, Any]) -> bytes:
        return stored_response_body(shown)
