"""The payment tables (`payments`, `payment_attempts`, `refunds`): their columns, and records
mapped to their rows and back (field names are column names, checked at import)."""

from __future__ import annotations

from typing import Any

import asyncpg

from clearport.db.statements import Table
from clearport.payments.attempts import Attempt
from clearport.payments.domain import (
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
        ("amount_disputed", "bigint"),
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
        ("card_funding", "text"),
        ("card_category", "text"),
        ("card_issuer_country", "text"),
        ("risk", "jsonb"),
    ),
)
# What a state change of a payment writes; the other columns are fixed at creation (the
# connector, its attempt and the routing change only while pending: failover).
PAYMENT_CHANGES = (
    "status",
    "connector",
    "auth_attempt_id",
    "routing",
    "amount_captured",
    "amount_refunded",
    "amount_refund_pending",
    "amount_disputed",
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
        ("reverses", "text"),
        ("tries", "integer"),
        ("retry_at", "timestamptz"),
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

for _table, _kind in ((PAYMENTS, Payment), (ATTEMPTS, Attempt), (REFUNDS, Refund)):
    _table.check_matches(_kind)


def payment_row(p: Payment) -> dict[str, Any]:
    return PAYMENTS.row(p)


def payment_of(row: asyncpg.Record) -> Payment:
    return PAYMENTS.record(Payment, row, status=PaymentStatus)


def attempt_row(a: Attempt) -> dict[str, Any]:
    return ATTEMPTS.row(a)


def attempt_of(row: asyncpg.Record) -> Attempt:
    return ATTEMPTS.record(Attempt, row, status=AttemptStatus, operation=Operation)


def refund_row(r: Refund) -> dict[str, Any]:
    return REFUNDS.row(r)


def refund_of(row: asyncpg.Record) -> Refund:
    return REFUNDS.record(Refund, row, status=RefundStatus)
