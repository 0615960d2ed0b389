"""Disputes, adjustments and files as the API shows them (`http/representation.py`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from clearport.disputes.domain import (
    EVIDENCE_FILE_FIELDS,
    EVIDENCE_TEXT_FIELDS,
    DisputeReason,
    DisputeStatus,
)
from clearport.files.domain import FilePurpose, FileType
from clearport.http.models.base import (
    AdjustmentId,
    BalanceTransactionId,
    Currency,
    DisputeId,
    DisputeReversalId,
    FileId,
    ListOf,
    MerchantId,
    PaymentId,
    ResponseModel,
    Timestamp,
    enum_of,
)

EvidenceKey = Annotated[
    str, Field(json_schema_extra=enum_of((*EVIDENCE_TEXT_FIELDS, *EVIDENCE_FILE_FIELDS)))
]


class EvidenceDetails(ResponseModel):
    due_by: Timestamp = Field(description="Evidence must be given and submitted before this.")
    has_evidence: bool
    submission_count: int = Field(ge=0)
    submitted: Timestamp | None


class Dispute(ResponseModel):
    """A chargeback, or an inquiry (`warning_*`) that moves no money."""

    id: DisputeId
    object: Literal["dispute"]
    payment: PaymentId
    merchant: MerchantId
    amount: int = Field(ge=1)
    currency: Currency
    fee: int = Field(ge=0, description="The dispute fee charged to the merchant.")
    status: DisputeStatus
    reason: DisputeReason
    network_reason_code: str | None
    network_case_id: str | None
    connector: str
    evidence: dict[EvidenceKey, str]
    evidence_details: EvidenceDetails
    from_available: int = Field(
        ge=0, description="Of amount + fee, what the available balance paid (the rest: pending)."
    )
    reversal: DisputeReversalId | None = Field(
        description="Won: the id of the credit that gave amount and fee back."
    )
    created: Timestamp
    closed: Timestamp | None


class Adjustment(ResponseModel):
    id: AdjustmentId
    object: Literal["adjustment"]
    merchant: MerchantId
    amount: int = Field(description="Signed: + credits the merchant.")
    currency: Currency
    reason: str
    balance_transaction: BalanceTransactionId
    created: Timestamp


class File(ResponseModel):
    id: FileId
    object: Literal["file"]
    merchant: MerchantId | None = Field(description="None: an operator's file.")
    purpose: FilePurpose
    type: FileType
    size: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created: Timestamp


class DisputeList(ListOf[Dispute]):
    pass


class AdjustmentList(ListOf[Adjustment]):
    pass


class FileList(ListOf[File]):
    pass
