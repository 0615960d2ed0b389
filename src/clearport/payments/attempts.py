"""An attempt: one call to a connector for a payment (authorize, capture, void, refund, reverse),
its reference at the connector, and what the answer made of it. A reversal is an attempt that
cancels another one whose answer never came."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from clearport.connectors.domain import ConnectorResult
from clearport.core.ids import new_id
from clearport.payments.domain import AttemptStatus, Operation, Outcome, Payment, attempt_status


@dataclass(slots=True)
class Attempt:
    id: str
    payment_id: str
    merchant_id: str
    operation: Operation
    amount: int
    currency: str
    connector: str
    created_at: datetime
    status: AttemptStatus = AttemptStatus.PENDING
    refund_id: str | None = None
    reverses: str | None = None  # the attempt a reversal cancels
    tries: int = 0  # how often the janitor could not settle it yet
    retry_at: datetime | None = None  # not asked about again before then
    response_code: str | None = None
    decline_code: str | None = None
    auth_code: str | None = None
    network_reference: str | None = None
    completed_at: datetime | None = None

    def complete(self, outcome: Outcome, result: ConnectorResult, at: datetime) -> None:
        self.status = attempt_status(outcome)
        self.response_code = result.response_code
        self.decline_code = result.decline_code
        self.auth_code = result.auth_code
        self.network_reference = result.network_reference
        self.completed_at = at


def new_attempt(
    payment: Payment,
    operation: Operation,
    amount: int,
    at: datetime,
    *,
    attempt_id: str | None = None,
    refund_id: str | None = None,
) -> Attempt:
    """A pending call to the payment's connector; its id is the reference the connector gets."""
    return Attempt(
        id=attempt_id or new_id("att"),
        payment_id=payment.id,
        merchant_id=payment.merchant_id,
        operation=operation,
        amount=amount,
        currency=payment.currency,
        connector=payment.connector,
        created_at=at,
        refund_id=refund_id,
    )


def new_reversal(attempt: Attempt, at: datetime) -> Attempt:
    """A pending reversal of `attempt` at the same connector, for the same amount."""
    return Attempt(
        id=new_id("att"),
        payment_id=attempt.payment_id,
        merchant_id=attempt.merchant_id,
        operation=Operation.REVERSE,
        amount=attempt.amount,
        currency=attempt.currency,
        connector=attempt.connector,
        created_at=at,
        refund_id=attempt.refund_id,
        reverses=attempt.id,
    )
