"""How the API shows payments, refunds, disputes, adjustments, files, settlements, payouts,
settlement runs, webhook endpoints and events: pure functions over the domain records.

The services need the same representation inside their transactions (an event carries the
object as shown, and the stored idempotent response is what a retry gets back), so
`ApiRepresentation` implements their ports (`payments.ports.Representation`,
`settlement.ports.SettlementRepresentation`, `webhooks.ports.Representation`) and `wiring` hands
it to them. Standard library, core and domain modules only (an import contract).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

from clearport.adjustments.domain import Adjustment
from clearport.core.clock import unix_seconds
from clearport.disputes.domain import Dispute
from clearport.events.domain import Event
from clearport.files.domain import StoredFile
from clearport.payments.domain import Payment, Refund
from clearport.settlement.domain import Payout, Settlement, SettlementRun
from clearport.webhooks.domain import WebhookEndpoint

# Payments routed before connectors could fail over stored `{rule, candidates, reason}`: shown
# in today's shape, with what they did not record.
_ROUTING_BEFORE_FAILOVER: dict[str, Any] = {"rule_set": None, "version": None, "failover": []}


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
            "funding": p.card_funding,
            "category": p.card_category,
            "issuer_country": p.card_issuer_country,
        },
        "token": p.token_id,
        "auth_code": p.auth_code,
        "network_reference": p.network_reference,
        "decline_code": p.decline_code,
        # A payment blocked by risk rules was never routed.
        "connector": p.connector or None,
        "routing": {**_ROUTING_BEFORE_FAILOVER, "chosen": p.connector, **p.routing}
        if p.connector
        else None,
        "risk": p.risk,
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


def _date_unix(d: date) -> int:
    return int(datetime.combine(d, time(0), UTC).timestamp())


def run_json(run: SettlementRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "object": "settlement_run",
        "business_date": run.business_date.isoformat(),
        "cutoff": unix_seconds(run.cutoff_at),
        "status": run.status,
        "partitions": run.partitions,
        "stats": run.stats,
        "error": run.error,
        "created": unix_seconds(run.created_at),
        "completed": unix_seconds(run.completed_at),
    }


def settlement_json(s: Settlement) -> dict[str, Any]:
    return {
        "id": s.id,
        "object": "settlement",
        "merchant": s.merchant_id,
        "business_date": s.business_date.isoformat(),
        "currency": s.currency,
        "count": s.count,
        "gross": s.gross,
        "refunds": s.refunds,
        "disputes": s.disputes,
        "adjustments": s.adjustments,
        "fees": s.fees,
        "fee_details": {
            "interchange": s.interchange,
            "scheme_fees": s.scheme_fees,
            "markup": s.markup,
            "rounding": s.rounding,
            "disputes": s.dispute_fees,
        },
        "reserve_held": s.reserve_held,
        "reserve_released": s.reserve_released,
        "net": s.net,
        "carried_in": s.carried_in,
        "carried_forward": s.carried_out,
        "repaid": s.repaid,
        "payout": s.payout,
        "payout_id": s.payout_id,
        "flagged_items": s.flagged_items,
        "run": s.run_id,
        "created": unix_seconds(s.created_at),
    }


def payout_json(p: Payout) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "payout",
        "merchant": p.merchant_id,
        "amount": p.amount,
        "currency": p.currency,
        "status": p.status,
        "arrival_date": _date_unix(p.arrival_date),
        "settlement": p.settlement_id,
        "flag": p.flag,
        "failure_code": p.failure_code,
        "repaid_by": p.repaid_by,
        "created": unix_seconds(p.created_at),
    }


def webhook_endpoint_json(e: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    """The endpoint; `secret` only in the answer to create and rotate_secret."""
    shown: dict[str, Any] = {
        "id": e.id,
        "object": "webhook_endpoint",
        "url": e.url,
        "enabled_events": list(e.enabled_events),
        "status": str(e.status),
        "disabled_reason": e.disabled_reason,
        "description": e.description,
        "merchant": e.merchant_id,
        "created": unix_seconds(e.created_at),
    }
    if secret is not None:
        shown["secret"] = secret
    return shown


def dispute_json(d: Dispute) -> dict[str, Any]:
    return {
        "id": d.id,
        "object": "dispute",
        "payment": d.payment_id,
        "merchant": d.merchant_id,
        "amount": d.amount,
        "currency": d.currency,
        "fee": d.fee,
        "status": str(d.status),
        "reason": str(d.reason),
        "network_reason_code": d.network_reason_code,
        "network_case_id": d.network_case_id,
        "connector": d.connector,
        "evidence": d.evidence,
        "evidence_details": {
            "due_by": unix_seconds(d.evidence_due_by),
            "has_evidence": bool(d.evidence),
            "submission_count": d.submission_count,
            "submitted": unix_seconds(d.evidence_submitted_at),
        },
        "from_available": d.from_available,
        "reversal": d.reversal_id,
        "created": unix_seconds(d.created_at),
        "closed": unix_seconds(d.closed_at),
    }


def adjustment_json(a: Adjustment) -> dict[str, Any]:
    return {
        "id": a.id,
        "object": "adjustment",
        "merchant": a.merchant_id,
        "amount": a.amount,
        "currency": a.currency,
        "reason": a.reason,
        "balance_transaction": a.balance_transaction,
        "created": unix_seconds(a.created_at),
    }


def file_json(f: StoredFile) -> dict[str, Any]:
    return {
        "id": f.id,
        "object": "file",
        "merchant": f.merchant_id,
        "purpose": str(f.purpose),
        "type": str(f.type),
        "size": f.size,
        "sha256": f.sha256,
        "created": unix_seconds(f.created_at),
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
    """The services' representation ports (payments, disputes, adjustments, settlement,
    webhooks), as the API shows things."""

    def payment(self, payment: Payment) -> dict[str, Any]:
        return payment_json(payment)

    def refund(self, refund: Refund) -> dict[str, Any]:
        return refund_json(refund)

    def settlement(self, settlement: Settlement) -> dict[str, Any]:
        return settlement_json(settlement)

    def payout(self, payout: Payout) -> dict[str, Any]:
        return payout_json(payout)

    def settlement_run(self, run: SettlementRun) -> dict[str, Any]:
        return run_json(run)

    def event(self, event: Event) -> dict[str, Any]:
        return event_json(event)

    def webhook_endpoint(self, endpoint: WebhookEndpoint) -> dict[str, Any]:
        return webhook_endpoint_json(endpoint)

    def dispute(self, dispute: Dispute) -> dict[str, Any]:
        return dispute_json(dispute)

    def adjustment(self, adjustment: Adjustment) -> dict[str, Any]:
        return adjustment_json(adjustment)

    def response_body(self, shown: dict[str, Any]) -> bytes:
        return stored_response_body(shown)
