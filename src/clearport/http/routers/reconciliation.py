"""Reconciliation (operators: finance): runs over uploaded settlement files, the exception
queue and its resolutions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ConfigDict, Field, StringConstraints

from clearport.http.context import ApiRoute, container_of, origin_of, principal_of
from clearport.http.listing import ListQuery, list_query
from clearport.http.models import reconciliation as shown
from clearport.http.models.base import FileId, ReconciliationExceptionId, ReconciliationRunId
from clearport.http.openapi import answers
from clearport.http.responses import JSONResponse
from clearport.http.schemas import StrictModel, list_json
from clearport.reconciliation.domain import (
    MAX_NOTE_LEN,
    ExceptionKind,
    ExceptionStatus,
    ReconciliationException,
    ReconciliationRun,
    RejectedLine,
    Resolution,
    run_shown,
)

router = APIRouter(route_class=ApiRoute, tags=["reconciliation"])
_SHOWN_REJECTED = 100


class RunCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"connector": "simulator", "file": "file_01JD3ZQ5N1T8W6X9Y2A4B7C0DE"}]
        }
    )

    connector: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="The connector's name; its type says the file's layout."
    )
    file: FileId = Field(description="An uploaded file of purpose `reconciliation`.")


class Resolve(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"action": "write_off", "note": "Below threshold"}]}
    )

    action: Literal["accept", "adjust", "write_off"]
    note: Annotated[str, StringConstraints(min_length=1, max_length=MAX_NOTE_LEN)]


def _seconds(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def run_json(run: ReconciliationRun, rejected: list[RejectedLine]) -> dict[str, Any]:
    return {
        **run_shown(run),
        "rejected_lines": [{"line": r.line_number, "reason": r.reason} for r in rejected],
    }


def exception_json(x: ReconciliationException, now: datetime) -> dict[str, Any]:
    return {
        "id": x.id,
        "object": "reconciliation_exception",
        "run": x.run_id,
        "connector": x.connector,
        "kind": str(x.kind),
        "status": str(x.status),
        "resolution": None if x.resolution is None else str(x.resolution),
        "reference": x.reference,
        "network_case_id": x.network_case_id,
        "line": x.line_number,
        "line_count": x.line_count,
        "item_type": x.item_type,
        "item": x.item_id,
        "merchant": x.merchant_id,
        "currency": x.currency,
        "internal_amount": x.internal_amount,
        "external_amount": x.external_amount,
        "external_currency": x.external_currency,
        "external_fee": x.external_fee,
        "expected_fee": x.expected_fee,
        "difference": x.difference,
        "settlement_date": None if x.settlement_date is None else x.settlement_date.isoformat(),
        "age_days": max((now - x.created_at).days, 0),
        "note": x.note,
        "adjustment": x.adjustment_id,
        "balance_transaction": x.balance_transaction,
        "resolved_by": x.resolved_by,
        "created": int(x.created_at.timestamp()),
        "resolved": _seconds(x.resolved_at),
    }


@router.post(
    "/v1/reconciliation_runs",
    status_code=201,
    response_model=shown.ReconciliationRun,
    responses={
        200: {"model": shown.ReconciliationRun, "description": "The file's run, made before."},
        **answers(404),
    },
    response_description="The run: the file imported and matched.",
)
async def create_run(request: Request, body: RunCreate) -> JSONResponse:
    """Import the uploaded settlement file and match it. The same file again answers its run
    (200) and changes nothing; a file not in the connector's layout is a 400 naming the first
    offending line; rows with bad values are reported in `rejected_lines`, the others apply."""
    service = container_of(request).reconciliation
    principal = principal_of(request)
    run, created = await service.reconcile_file(
        principal, origin_of(request), body.connector, body.file
    )
    rejected = await service.rejected_lines(principal, run.id, _SHOWN_REJECTED)
    return JSONResponse(run_json(run, rejected), status_code=201 if created else 200)


@router.get("/v1/reconciliation_runs", response_model=shown.ReconciliationRunList)
async def list_runs(
    request: Request,
    q: ListQuery = Depends(list_query("rc")),
    connector: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Query(None),
) -> JSONResponse:
    service = container_of(request).reconciliation
    page = await service.list_runs(
        principal_of(request),
        q.page,
        {"connector": connector, "created_gte": q.created_gte, "created_lt": q.created_lt},
    )
    return JSONResponse(
        list_json([run_json(r, []) for r in page.data], page.has_more, "/v1/reconciliation_runs")
    )


@router.get("/v1/reconciliation_runs/{run_id}", response_model=shown.ReconciliationRun)
async def get_run(request: Request, run_id: ReconciliationRunId) -> JSONResponse:
    service = container_of(request).reconciliation
    principal = principal_of(request)
    run = await service.get_run(principal, run_id)
    return JSONResponse(
        run_json(run, await service.rejected_lines(principal, run.id, _SHOWN_REJECTED))
    )


@router.get("/v1/reconciliation_exceptions", response_model=shown.ReconciliationExceptionList)
async def list_exceptions(
    request: Request,
    q: ListQuery = Depends(list_query("rcx")),
    run: ReconciliationRunId | None = Query(None),
    kind: ExceptionKind | None = Query(None),
    status: ExceptionStatus | None = Query(None),
    older_than_days: int | None = Query(
        None, ge=0, le=3650, description="Only exceptions at least this many days old."
    ),
) -> JSONResponse:
    container = container_of(request)
    page = await container.reconciliation_queue.list_exceptions(
        principal_of(request),
        q.page,
        {
            "run": run,
            "kind": None if kind is None else str(kind),
            "status": None if status is None else str(status),
            "older_than_days": older_than_days,
            "created_gte": q.created_gte,
            "created_lt": q.created_lt,
        },
    )
    now = container.clock.now()
    return JSONResponse(
        list_json(
            [exception_json(x, now) for x in page.data],
            page.has_more,
            "/v1/reconciliation_exceptions",
        )
    )


@router.get(
    "/v1/reconciliation_exceptions/{exception_id}", response_model=shown.ReconciliationException
)
async def get_exception(request: Request, exception_id: ReconciliationExceptionId) -> JSONResponse:
    container = container_of(request)
    found = await container.reconciliation_queue.get_exception(principal_of(request), exception_id)
    return JSONResponse(exception_json(found, container.clock.now()))


@router.post(
    "/v1/reconciliation_exceptions/{exception_id}/resolve",
    response_model=shown.ReconciliationException,
    responses=answers(404),
)
async def resolve_exception(
    request: Request, exception_id: ReconciliationExceptionId, body: Resolve
) -> JSONResponse:
    """accept: the processor's figure stands; adjust: the difference is posted to the merchant
    as an adjustment; write_off: the platform absorbs it (reconciliation losses). Audited."""
    container = container_of(request)
    resolved = await container.reconciliation_queue.resolve(
        principal_of(request),
        origin_of(request),
        exception_id,
        Resolution(body.action),
        body.note,
    )
    return JSONResponse(exception_json(resolved, container.clock.now()))
