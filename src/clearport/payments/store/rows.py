"""The payment tables (`payments`, `payment_attempts`, `refunds`): their columns, and records
mapped to their rows and back, one field at a time."""

from __future__ import annotations

from typing import Any

import asyncpg

from clearport.db.statements import Table
from clearport.payments.domain import (
    Attempt,
    AttemptStatus,
    Operation,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
)

PAYMENTS = Table(
    "payments",
    (
        ("id", "text"),
        ("merchant_id", "text"),
        ("amount", "bigint"),
        ("currency", "text"),
        ("status", "text"),
        ("capture_requested", "boolean"),
        ("amount_captured", "bigint"),
        ("amount_refunded", "bigint"),
        ("amount_refund_pending", "bigint"),
        ("pending_operation", "text"),
        ("card_brand", "text"),
        ("card_bin", "text"),
        ("card_last4", "text"),
        ("card_exp_month", "integer"),
        ("card_exp_year", "integer"),
        ("card_fingerprint", "text"),
        ("token_id", "text"),
        ("auth_attempt_id", "text"),
        ("auth_code", "text"),
        ("network_reference", "text"),
        ("decline_code", "text"),
        ("connector", "text"),
        ("routing", "jsonb"),
        ("reference", "text"),
        ("metadata", "jsonb"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("authorized_at", "timestamptz"),
        ("captured_at", "timestamptz"),
    ),
)
# What a state change of a payment writes; the other columns are fixed at creation.
PAYMENT_CHANGES = (
    "status",
    "amount_captured",
    "amount_refunded",
    "amount_refund_pending",
    "pending_operation",
    "auth_code",
    "network_reference",
    "decline_code",
    "updated_at",
    "authorized_at",
    "captured_at",
)
ATTEMPTS = Table(
    "payment_attempts",
    (
        ("id", "text"),
        ("payment_id", "text"),
        ("merchant_id", "text"),
        ("operation", "text"),
        ("refund_id", "text"),
        ("amount", "bigint"),
        ("currency", "text"),
        ("connector", "text"),
        ("status", "text"),
        ("response_code", "text"),
        ("decline_code", "text"),
        ("auth_code", "text"),
        ("network_reference", "text"),
        ("created_at", "timestamptz"),
        ("completed_at", "timestamptz"),
    ),
)
# What an attempt's answer writes.
ATTEMPT_RESULT = (
    "status",
    "response_code",
    "decline_code",
    "auth_code",
    "network_reference",
    "completed_at",
)
REFUNDS = Table(
    "refunds",
    (
        ("id", "text"),
        ("payment_id", "text"),
        ("merchant_id", "text"),
        ("amount", "bigint"),
        ("currency", "text"),
        ("status", "text"),
        ("reason", "text"),
        ("attempt_id", "text"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ),
)


def payment_row(p: Payment) -> dict[str, Any]:
    return {
        "id": p.id,
        "merchant_id": p.merchant_id,
        "amount": p.amount,
        "currency": p.currency,
        "status": str(p.status),
        "capture_requested": p.capture_requested,
        "amount_captured": p.amount_captured,
        "amount_refunded": p.amount_refunded,
        "amount_refund_pending": p.amount_refund_pending,
        "pending_operation": p.pending_operation,
        "card_brand": p.card_brand,
        "card_bin": p.card_bin,
        "card_last4": p.card_last4,
        "card_exp_month": p.card_exp_month,
        "card_exp_year": p.card_exp_year,
        "card_fingerprint": p.card_fingerprint,
        "token_id": p.token_id,
        "auth_attempt_id": p.auth_attempt_id,
        "auth_code": p.auth_code,
        "network_reference": p.network_reference,
        "decline_code": p.decline_code,
        "connector": p.connector,
        "routing": p.routing,
        "reference": p.reference,
        "metadata": p.metadata,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "authorized_at": p.authorized_at,
        "captured_at": p.captured_at,
    }


def payment_of(row: asyncpg.Record) -> Payment:
    return Payment(
        id=row["id"],
        merchant_id=row["merchant_id"],
        amount=row["amount"],
        currency=row["currency"],
        status=PaymentStatus(row["status"]),
        capture_requested=row["capture_requested"],
        amount_captured=row["amount_captured"],
        amount_refunded=row["amount_refunded"],
        amount_refund_pending=row["amount_refund_pending"],
        pending_operation=row["pending_operation"],
        card_brand=row["card_brand"],
        card_bin=row["card_bin"],
        card_last4=row["card_last4"],
        card_exp_month=row["card_exp_month"],
        card_exp_year=row["card_exp_year"],
        card_fingerprint=row["card_fingerprint"],
        token_id=row["token_id"],
        auth_attempt_id=row["auth_attempt_id"],
        auth_code=row["auth_code"],
        network_reference=row["network_reference"],
        decline_code=row["decline_code"],
        connector=row["connector"],
        routing=row["routing"],
        reference=row["reference"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        authorized_at=row["authorized_at"],
        captured_at=row["captured_at"],
    )


def attempt_row(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "payment_id": a.payment_id,
        "merchant_id": a.merchant_id,
        "operation": str(a.operation),
        "refund_id": a.refund_id,
        "amount": a.amount,
        "currency": a.currency,
        "connector": a.connector,
        "status": str(a.status),
        "response_code": a.response_code,
        "decline_code": a.decline_code,
        "auth_code": a.auth_code,
        "network_reference": a.network_reference,
        "created_at": a.created_at,
        "completed_at": a.completed_at,
    }


def attempt_of(row: asyncpg.Record) -> Attempt:
    return Attempt(
        id=row["id"],
        payment_id=row["payment_id"],
        merchant_id=row["merchant_id"],
        operation=Operation(row["operation"]),
        refund_id=row["refund_id"],
        amount=row["amount"],
        currency=row["currency"],
        connector=row["connector"],
        status=AttemptStatus(row["status"]),
        response_code=row["response_code"],
        decline_code=row["decline_code"],
        auth_code=row["auth_code"],
        network_reference=row["network_reference"],
        created_at=row["created_at"],
        completed_at=row["completed_at"],
    )


def refund_row(r: Refund) -> dict[str, Any]:
    return {
        "id": r.id,
        "payment_id": r.payment_id,
        "merchant_id": r.merchant_id,
        "amount": r.amount,
        "currency": r.currency,
        "status": str(r.status),
        "reason": r.reason,
        "attempt_id": r.attempt_id,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


def refund_of(row: asyncpg.Record) -> Refund:
    return Refund(
        id=row["id"],
        payment_id=row["payment_id"],
        merchant_id=row["merchant_id"],
        amount=row["amount"],
        currency=row["currency"],
        status=RefundStatus(row["status"]),
        reason=row["reason"],
        attempt_id=row["attempt_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
