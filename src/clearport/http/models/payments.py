"""Payments, refunds and a merchant's payment settings, as the API shows them
(`http/representation.py`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from clearport.http.models.base import (
    Currency,
    ListOf,
    MerchantId,
    Metadata,
    PaymentId,
    RefundId,
    ResponseModel,
    Timestamp,
    TokenId,
)
from clearport.http.models.vault import Card
from clearport.payments.domain import PaymentStatus, RefundStatus


class FailedOver(ResponseModel):
    """A candidate the payment moved on from, and why."""

    connector: str
    decline_code: str = Field(
        description="`processing_error`, `timeout`, `connection_refused` or `breaker_open`."
    )


class Routing(ResponseModel):
    """Why the payment went to its connector: never a black box."""

    rule_set: str | None = Field(
        description="The active routing rule set; null when none was active (the connectors' "
        "default order)."
    )
    version: int | None
    rule: str
    candidates: list[str]
    chosen: str
    reason: str
    failover: list[FailedOver] = Field(
        description="Candidates tried (or skipped, breaker open) before `chosen`, in order."
    )


class FiredRule(ResponseModel):
    name: str
    kind: str
    mode: Literal["enforce", "dry_run"]


class Risk(ResponseModel):
    """The risk rules' decision: what fired, and whether it blocked the payment."""

    rule_set: str
    version: int
    rules_fired: list[FiredRule]
    mode: Literal["enforce", "dry_run"] | None = Field(
        description="`enforce`: an enforced rule blocked the payment; `dry_run`: only dry-run "
        "rules fired (recorded, not enforced); null: none fired."
    )


class Payment(ResponseModel):
    id: PaymentId
    object: Literal["payment"]
    status: PaymentStatus
    amount: int = Field(ge=1, description="In minor units of `currency`.")
    currency: Currency
    amount_captured: int = Field(ge=0)
    amount_refunded: int = Field(ge=0)
    card: Card
    token: TokenId
    auth_code: str | None
    network_reference: str | None
    decline_code: str | None
    connector: str | None = Field(description="Null when risk rules blocked the payment.")
    routing: Routing | None = Field(description="Null when risk rules blocked the payment.")
    risk: Risk | None = Field(description="Null when no risk rule set was active.")
    reference: str | None
    metadata: Metadata
    created: Timestamp
    authorized: Timestamp | None
    captured: Timestamp | None


class Refund(ResponseModel):
    id: RefundId
    object: Literal["refund"]
    payment: PaymentId
    amount: int = Field(ge=1)
    currency: Currency
    status: RefundStatus
    reason: str | None
    created: Timestamp


class PaymentSettings(ResponseModel):
    object: Literal["payment_settings"]
    merchant: MerchantId
    require_cvc: bool = Field(description="Refuse card payments that come without a CVC.")


class PaymentList(ListOf[Payment]):
    pass


class RefundList(ListOf[Refund]):
    pass
