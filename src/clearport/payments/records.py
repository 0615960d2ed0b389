"""What a payment's state change writes besides its own rows, built without I/O: the
transaction-log entry, the outbox event and, when money moves, the ledger transfer
(docs/decisions/0301). The event carries the object as the API shows it (`object_json`): the
representation is the HTTP layer's, handed in by the caller."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clearport.connectors.domain import ConnectorResult
from clearport.core.ids import new_id
from clearport.events.domain import Event
from clearport.ledger.domain import PLATFORM, AccountKind, AccountRef, TransferRequest
from clearport.payments.domain import Payment, PaymentStatus, Refund, RefundStatus
from clearport.txlog.domain import TxlogEntry

# One event type per status a change leads to (a pending payment emits none).
EVENT_OF_STATUS: dict[PaymentStatus, str] = {
    PaymentStatus.AUTHORIZED: "payment.authorized",
    PaymentStatus.CAPTURED: "payment.captured",
    PaymentStatus.DECLINED: "payment.declined",
    PaymentStatus.FAILED: "payment.failed",
    PaymentStatus.VOIDED: "payment.voided",
    PaymentStatus.EXPIRED: "payment.expired",
    PaymentStatus.REFUNDED: "payment.refunded",
}

EVENT_OF_REFUND: dict[RefundStatus, str] = {
    RefundStatus.SUCCEEDED: "refund.succeeded",
    RefundStatus.FAILED: "refund.failed",
}


def payment_entry(
    payment: Payment,
    previous: PaymentStatus | None,
    actor: str,
    result: ConnectorResult | None,
) -> TxlogEntry:
    """The payment's change to its current status (from None: its creation)."""
    return TxlogEntry(
        object_type="payment",
        object_id=payment.id,
        payment_id=payment.id,
        merchant_id=payment.merchant_id,
        from_status=None if previous is None else str(previous),
        to_status=str(payment.status),
        amount=payment.amount_captured
        if payment.status is PaymentStatus.CAPTURED
        else payment.amount,
        currency=payment.currency,
        actor=actor,
        connector_result=None if result is None else result.as_log(),
        occurred_at=payment.updated_at,
    )


def refund_entry(
    refund: Refund,
    previous: RefundStatus | None,
    actor: str,
    result: ConnectorResult | None,
) -> TxlogEntry:
    return TxlogEntry(
        object_type="refund",
        object_id=refund.id,
        payment_id=refund.payment_id,
        merchant_id=refund.merchant_id,
        from_status=None if previous is None else str(previous),
        to_status=str(refund.status),
        amount=refund.amount,
        currency=refund.currency,
        actor=actor,
        connector_result=None if result is None else result.as_log(),
        occurred_at=refund.updated_at,
    )


def payment_event(payment: Payment, object_json: dict[str, Any], at: datetime) -> Event:
    """`payment.<status>` for the payment's new status."""
    return _event(payment.merchant_id, EVENT_OF_STATUS[payment.status], payment.id, object_json, at)


def refund_event(refund: Refund, object_json: dict[str, Any], at: datetime) -> Event:
    """`refund.succeeded` or `refund.failed`."""
    return _event(refund.merchant_id, EVENT_OF_REFUND[refund.status], refund.id, object_json, at)


def _event(
    merchant_id: str, type_: str, object_id: str, object_json: dict[str, Any], at: datetime
) -> Event:
    return Event(
        id=new_id("evt"),
        merchant_id=merchant_id,
        type=type_,
        object_id=object_id,
        data={"object": object_json},
        created_at=at,
    )


def capture_transfer(payment: Payment) -> TransferRequest:
    """The processor owes us what was captured; we owe it to the merchant (until settlement)."""
    currency = payment.currency
    return TransferRequest(
        id=f"{payment.id}:capture",
        debit=AccountRef(PLATFORM, AccountKind.PROCESSOR_RECEIVABLE, currency),
        credit=AccountRef(payment.merchant_id, AccountKind.PENDING, currency),
        amount_minor=payment.amount_captured,
        currency=currency,
        code="capture",
        source=payment.id,
    )


def refund_transfer(payment: Payment, refund: Refund) -> TransferRequest:
    """The reverse of a capture, for the refunded amount."""
    currency = payment.currency
    return TransferRequest(
        id=f"{refund.id}:refund",
        debit=AccountRef(payment.merchant_id, AccountKind.PENDING, currency),
        credit=AccountRef(PLATFORM, AccountKind.PROCESSOR_RECEIVABLE, currency),
        amount_minor=refund.amount,
        currency=currency,
        code="refund",
        source=refund.id,
    )
