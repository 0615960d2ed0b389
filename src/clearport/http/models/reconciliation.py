"""Reconciliation runs and exceptions as the API shows them (`http/representation.py`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from clearport.http.models.base import (
    AdjustmentId,
    BalanceTransactionId,
    Currency,
    FileId,
    ListOf,
    MerchantId,
    ReconciliationExceptionId,
    ReconciliationRunId,
    ResponseModel,
    Timestamp,
)
from clearport.reconciliation.domain import ExceptionKind, ExceptionStatus, Resolution

Count = int


class RejectedLine(ResponseModel):
    line: int = Field(ge=2, description="The file's line number (line 1 is the header).")
    reason: str


class ReconciliationRun(ResponseModel):
    """One settlement file matched against Clearport's captures, refunds and disputes."""

    id: ReconciliationRunId
    object: Literal["reconciliation_run"]
    connector: str
    connector_type: str
    file: FileId | None
    sha256: str
    period_start: str = Field(description="The first settlement date the file covers.")
    period_end: str = Field(description="The day after the last one.")
    lines: Count = Field(ge=0, description="Rows after the header.")
    rejected: Count = Field(ge=0, description="Rows not applied: see rejected_lines.")
    matched: Count = Field(ge=0)
    missing_internal: Count = Field(ge=0)
    missing_external: Count = Field(ge=0)
    amount_mismatch: Count = Field(ge=0)
    currency_mismatch: Count = Field(ge=0)
    fee_difference: Count = Field(ge=0)
    duplicate: Count = Field(ge=0)
    matched_late: Count = Field(
        ge=0, description="Items an earlier run found missing, settled by this file."
    )
    disputes_created: Count = Field(ge=0)
    rejected_lines: list[RejectedLine] = Field(description="The first 100 rejected rows.")
    created: Timestamp


class ReconciliationRunList(ListOf[ReconciliationRun]):
    pass


class ReconciliationException(ResponseModel):
    """A difference between the processor's file and Clearport's records, to resolve."""

    id: ReconciliationExceptionId
    object: Literal["reconciliation_exception"]
    run: ReconciliationRunId
    connector: str
    kind: ExceptionKind
    status: ExceptionStatus
    resolution: Resolution | None
    reference: str = Field(description="The transaction as the processor names it.")
    network_case_id: str | None
    line: int | None = Field(description="The file's line, when the file has the transaction.")
    line_count: int = Field(ge=0)
    item_type: Literal["capture", "refund", "dispute"]
    item: str | None = Field(description="Clearport's capture (pay_), refund or dispute.")
    merchant: MerchantId | None
    currency: Currency
    internal_amount: int | None
    external_amount: int | None
    external_currency: str | None
    external_fee: int | None
    expected_fee: int | None
    difference: int | None = Field(
        description="What the processor's figures mean for the merchant against what Clearport "
        "credited it, in minor units of `currency` (+: owed more); null across currencies."
    )
    settlement_date: str | None
    age_days: int = Field(ge=0)
    note: str | None
    adjustment: AdjustmentId | None
    balance_transaction: BalanceTransactionId | None
    resolved_by: str | None
    created: Timestamp
    resolved: Timestamp | None


class ReconciliationExceptionList(ListOf[ReconciliationException]):
    pass
