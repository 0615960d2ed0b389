"""Settlement runs (operators), settlements, their items, payouts (merchants see their own)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field, StringConstraints

from clearport.core.errors import InvalidRequest
from clearport.core.pagination import PageRequest
from clearport.http.context import ApiRoute, container_of, origin_of, principal_of
from clearport.http.listing import MAX_TIMESTAMP, ListQuery, list_query, page_query
from clearport.http.models import settlement as shown
from clearport.http.models.base import BusinessDate, PayoutId, RunId, SettlementId
from clearport.http.representation import payout_json, run_json, settlement_json
from clearport.http.responses import JSONResponse
from clearport.http.schemas import StrictModel, list_json
from clearport.settlement.domain import ITEM_ID_PREFIXES, ItemLine

router = APIRouter(route_class=ApiRoute, tags=["settlement"])


class RunCreate(StrictModel):
    business_date: BusinessDate
    cutoff: int | None = Field(
        default=None,
        ge=0,
        le=MAX_TIMESTAMP,
        description="Unix seconds; by default the configured cutoff after the business date.",
    )


class PayoutMark(StrictModel):
    status: Literal["paid", "failed"]
    failure_code: Annotated[str, StringConstraints(min_length=1, max_length=8)] | None = None


def item_json(i: ItemLine) -> dict[str, Any]:
    return {
        "id": i.source_id,
        "object": "settlement_item",
        "settlement": i.settlement_id,
        "merchant": i.merchant_id,
        "payment": i.payment_id,
        "reference": i.reference,
        "type": i.type,
        "brand": i.brand,
        "currency": i.currency,
        "gross": i.gross_minor,
        "interchange": i.interchange_minor,
        "scheme_fee": i.scheme_fee_minor,
        "markup": i.markup_minor,
        "commission": i.commission_minor,
        "net": i.net_minor,
        "flags": [f for f in i.flags.split(",") if f],
    }


@router.post(
    "/v1/settlement_runs",
    status_code=201,
    response_model=shown.SettlementRun,
    response_description="The run, started.",
    responses={
        200: {"model": shown.SettlementRun, "description": "The date's run, started before."}
    },
)
async def create_run(request: Request, body: RunCreate) -> JSONResponse:
    """The run is settled by the workers: its partitions are queued as jobs, which any worker on
    any machine takes (this process only answers)."""
    container = container_of(request)
    service = container.settlement
    try:
        business_date = date.fromisoformat(body.business_date)
    except ValueError:
        raise InvalidRequest("'business_date' is not a date.", field="business_date") from None
    cutoff = None if body.cutoff is None else datetime.fromtimestamp(body.cutoff, UTC)
    run, created = await service.start(
        principal_of(request), origin_of(request), business_date, cutoff_at=cutoff
    )
    if run.status == "running":
        await container.settlement_jobs.enqueue(run)
    return JSONResponse(run_json(run), status_code=201 if created else 200)


@router.get("/v1/settlement_runs/{run_id}", response_model=shown.SettlementRun)
async def get_run(request: Request, run_id: RunId) -> JSONResponse:
    run = await container_of(request).settlement.get_run(principal_of(request), run_id)
    return JSONResponse(run_json(run))


@router.get("/v1/settlements", response_model=shown.SettlementList)
async def list_settlements(
    request: Request, q: ListQuery = Depends(list_query("stl"))
) -> JSONResponse:
    page = await container_of(request).settlement.list_settlements(principal_of(request), q.page)
    return JSONResponse(
        list_json([settlement_json(s) for s in page.data], page.has_more, "/v1/settlements")
    )


@router.get("/v1/settlements/{settlement_id}", response_model=shown.Settlement)
async def get_settlement(request: Request, settlement_id: SettlementId) -> JSONResponse:
    s = await container_of(request).settlement.get_settlement(principal_of(request), settlement_id)
    return JSONResponse(settlement_json(s))


@router.get("/v1/settlements/{settlement_id}/items", response_model=shown.SettlementItemList)
async def list_items(
    request: Request,
    settlement_id: SettlementId,
    # An item's id is its source's (capture, refund, dispute ...): a cursor is an id of any.
    page_request: PageRequest = Depends(page_query(ITEM_ID_PREFIXES)),
) -> JSONResponse:
    page = await container_of(request).settlement.list_items(
        principal_of(request), settlement_id, page_request
    )
    return JSONResponse(
        list_json(
            [item_json(i) for i in page.data],
            page.has_more,
            f"/v1/settlements/{settlement_id}/items",
        )
    )


@router.get("/v1/payouts", response_model=shown.PayoutList)
async def list_payouts(
    request: Request,
    q: ListQuery = Depends(list_query("po")),
    status: Literal["pending", "in_transit", "paid", "failed"] | None = Query(None),
) -> JSONResponse:
    page = await container_of(request).settlement.list_payouts(
        principal_of(request), q.page, status
    )
    return JSONResponse(
        list_json([payout_json(p) for p in page.data], page.has_more, "/v1/payouts")
    )


@router.get("/v1/payouts/{payout_id}", response_model=shown.Payout)
async def get_payout(request: Request, payout_id: PayoutId) -> JSONResponse:
    p = await container_of(request).settlement.get_payout(principal_of(request), payout_id)
    return JSONResponse(payout_json(p))


@router.post("/v1/payouts/{payout_id}/mark", response_model=shown.Payout)
async def mark_payout(request: Request, payout_id: PayoutId, body: PayoutMark) -> JSONResponse:
    p = await container_of(request).settlement.mark_payout(
        principal_of(request), origin_of(request), payout_id, body.status, body.failure_code
    )
    return JSONResponse(payout_json(p))
