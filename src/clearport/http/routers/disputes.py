"""Disputes (operators create and close; the merchant, or an operator for it, gives evidence) and
adjustments (finance)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ConfigDict, Field, StringConstraints, create_model
from pydantic.config import JsonDict

from clearport.adjustments.domain import MAX_REASON_LEN
from clearport.core.money import MAX_AMOUNT_MINOR
from clearport.disputes.domain import (
    EVIDENCE_FILE_FIELDS,
    EVIDENCE_TEXT_FIELDS,
    MAX_EVIDENCE_TEXT,
    DisputeReason,
    DisputeStatus,
    Outcome,
)
from clearport.disputes.service import NewDispute
from clearport.http.context import ApiRoute, claim_of, container_of, origin_of, principal_of
from clearport.http.listing import MAX_TIMESTAMP, ListQuery, list_query
from clearport.http.models.base import AdjustmentId, Currency, DisputeId, FileId, MerchantId
from clearport.http.models.base import PaymentId as PaymentIdType
from clearport.http.models.disputes import Adjustment, AdjustmentList, Dispute, DisputeList
from clearport.http.openapi import answers
from clearport.http.representation import adjustment_json, dispute_json
from clearport.http.responses import JSONResponse
from clearport.http.schemas import StrictModel, list_json

router = APIRouter(route_class=ApiRoute, tags=["disputes"])

NetworkText = Annotated[str, StringConstraints(min_length=1, max_length=64)]
EvidenceText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_EVIDENCE_TEXT)]
Amount = Annotated[
    int, Field(ge=1, le=MAX_AMOUNT_MINOR, description="In minor units of the payment's currency.")
]


class DisputeCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "payment": "pay_01JD3ZQ5N1T8W6X9Y2A4B7C0DE",
                    "amount": 2000,
                    "reason": "fraudulent",
                    "network_case_id": "CASE-1",
                }
            ]
        }
    )

    payment: PaymentIdType
    amount: Amount
    reason: DisputeReason = Field(strict=False)  # from its JSON string
    network_reason_code: NetworkText | None = None
    network_case_id: NetworkText | None = Field(
        default=None, description="The network's case; unique per connector."
    )
    evidence_due_by: int | None = Field(
        default=None,
        ge=0,
        le=MAX_TIMESTAMP,
        description="Unix seconds; by default 7 days from now.",
    )
    inquiry: bool = Field(
        default=False,
        description="An inquiry (retrieval request): `warning_*` statuses, no money moves.",
    )


def _no_default(schema: JsonDict) -> None:
    schema.pop("default", None)


# Absent unless given: a value of its type when given, never null (the document shows no
# default, so a generator never sends one).
_ABSENT = Field(default=None, json_schema_extra=_no_default)


def _evidence_model() -> type[StrictModel]:
    """Evidence: each text field, and each file field naming a `file_…` (purpose
    dispute_evidence) of the merchant's or an operator's; at least one of them. A field left
    out keeps what the dispute has (none is null)."""
    fields: dict[str, Any] = {name: (EvidenceText, _ABSENT) for name in EVIDENCE_TEXT_FIELDS}
    fields |= {name: (FileId, _ABSENT) for name in EVIDENCE_FILE_FIELDS}
    model: type[StrictModel] = create_model(
        "DisputeEvidence",
        __base__=StrictModel,
        __config__=None,
        **fields,
    )
    model.model_config["json_schema_extra"] = {"minProperties": 1}
    model.model_rebuild(force=True)
    return model


DisputeEvidence = _evidence_model()
# Evidence, or the request to submit what the dispute has: a body with neither does nothing.
_EVIDENCE_OR_SUBMIT: JsonDict = {
    "anyOf": [
        {"required": ["evidence"]},
        {"required": ["submit"], "properties": {"submit": {"const": True}}},
    ]
}


class DisputeUpdate(StrictModel):
    model_config = ConfigDict(json_schema_extra=_EVIDENCE_OR_SUBMIT)

    evidence: DisputeEvidence = _ABSENT  # type: ignore[valid-type]
    submit: bool = Field(
        default=False, description="Send the evidence to the network: final, under review."
    )


class DisputeClose(StrictModel):
    outcome: Literal["won", "lost"]


class AdjustmentCreate(StrictModel):
    merchant: MerchantId
    amount: int = Field(
        ge=-MAX_AMOUNT_MINOR,
        le=MAX_AMOUNT_MINOR,
        description="Signed, not zero: + credits the merchant.",
        json_schema_extra={"not": {"const": 0}},
    )
    currency: Currency
    reason: Annotated[str, StringConstraints(min_length=1, max_length=MAX_REASON_LEN)]


def _at(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


@router.post(
    "/v1/disputes",
    status_code=201,
    response_model=Dispute,
    responses=answers(404),
    response_description="The dispute; a chargeback has taken its amount and fee already.",
)
async def create_dispute(request: Request, body: DisputeCreate) -> JSONResponse:
    dispute = await container_of(request).disputes.create(
        principal_of(request),
        origin_of(request),
        NewDispute(
            payment=body.payment,
            amount=body.amount,
            reason=body.reason,
            network_reason_code=body.network_reason_code,
            network_case_id=body.network_case_id,
            evidence_due_by=_at(body.evidence_due_by),
            inquiry=body.inquiry,
        ),
        claim_of(request),
    )
    return JSONResponse(dispute_json(dispute), status_code=201)


@router.get("/v1/disputes", response_model=DisputeList)
async def list_disputes(
    request: Request,
    q: ListQuery = Depends(list_query("dp")),
    payment: PaymentIdType | None = Query(None),
    status: DisputeStatus | None = Query(None),
) -> JSONResponse:
    page = await container_of(request).disputes.list(
        principal_of(request),
        q.page,
        {
            "payment_id": payment,
            "status": None if status is None else str(status),
            "created_gte": q.created_gte,
            "created_lt": q.created_lt,
        },
    )
    return JSONResponse(
        list_json([dispute_json(d) for d in page.data], page.has_more, "/v1/disputes")
    )


@router.get("/v1/disputes/{dispute_id}", response_model=Dispute)
async def get_dispute(request: Request, dispute_id: DisputeId) -> JSONResponse:
    dispute = await container_of(request).disputes.get(principal_of(request), dispute_id)
    return JSONResponse(dispute_json(dispute))


@router.post("/v1/disputes/{dispute_id}", response_model=Dispute)
async def update_dispute(
    request: Request, dispute_id: DisputeId, body: DisputeUpdate
) -> JSONResponse:
    evidence = None if body.evidence is None else body.evidence.model_dump(exclude_none=True)
    dispute = await container_of(request).disputes.update(
        principal_of(request),
        origin_of(request),
        dispute_id,
        evidence,
        body.submit,
        claim_of(request),
    )
    return JSONResponse(dispute_json(dispute))


@router.post("/v1/disputes/{dispute_id}/close", response_model=Dispute)
async def close_dispute(
    request: Request, dispute_id: DisputeId, body: DisputeClose
) -> JSONResponse:
    dispute = await container_of(request).disputes.close(
        principal_of(request),
        origin_of(request),
        dispute_id,
        Outcome(body.outcome),
        claim_of(request),
    )
    return JSONResponse(dispute_json(dispute))


@router.post("/v1/adjustments", status_code=201, response_model=Adjustment, responses=answers(404))
async def create_adjustment(request: Request, body: AdjustmentCreate) -> JSONResponse:
    adjustment = await container_of(request).adjustments.create(
        principal_of(request),
        origin_of(request),
        body.merchant,
        body.amount,
        body.currency,
        body.reason,
        claim_of(request),
    )
    return JSONResponse(adjustment_json(adjustment), status_code=201)


@router.get("/v1/adjustments", response_model=AdjustmentList)
async def list_adjustments(
    request: Request, q: ListQuery = Depends(list_query("adj"))
) -> JSONResponse:
    page = await container_of(request).adjustments.list(
        principal_of(request),
        q.page,
        {"created_gte": q.created_gte, "created_lt": q.created_lt},
    )
    return JSONResponse(
        list_json([adjustment_json(a) for a in page.data], page.has_more, "/v1/adjustments")
    )


@router.get("/v1/adjustments/{adjustment_id}", response_model=Adjustment)
async def get_adjustment(request: Request, adjustment_id: AdjustmentId) -> JSONResponse:
    adjustment = await container_of(request).adjustments.get(principal_of(request), adjustment_id)
    return JSONResponse(adjustment_json(adjustment))
