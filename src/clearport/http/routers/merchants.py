"""Merchants and their secret keys (operators)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request

from clearport.http.context import ApiRoute, container_of, origin_of, principal_of
from clearport.http.listing import ListQuery, list_query
from clearport.http.models.base import KeyId, MerchantId
from clearport.http.models.merchants import (
    Merchant,
    MerchantKey,
    MerchantKeyList,
    MerchantList,
    NewMerchantKey,
)
from clearport.http.openapi import answers
from clearport.http.responses import JSONResponse
from clearport.http.schemas import (
    KeyCreate,
    MerchantCreate,
    MerchantUpdate,
    key_json,
    list_json,
    merchant_json,
)
from clearport.merchants.domain import MerchantStatus
from clearport.merchants.service import MerchantPatch, NewMerchant

router = APIRouter(prefix="/v1/merchants", route_class=ApiRoute, tags=["merchants"])


def _dump(model: Any) -> dict[str, Any] | None:
    return None if model is None else dict(model.model_dump(mode="json"))


@router.post("", status_code=201, response_model=Merchant)
async def create_merchant(request: Request, body: MerchantCreate) -> JSONResponse:
    merchant = await container_of(request).merchants.create(
        principal_of(request),
        origin_of(request),
        NewMerchant(
            name=body.name,
            country=body.country,
            mcc=body.mcc,
            default_currency=body.default_currency,
            pricing=_dump(body.pricing),
            payout_delay_days=body.payout_delay_days,
            reserve=_dump(body.reserve),
            metadata=body.metadata,
        ),
    )
    return JSONResponse(merchant_json(merchant), status_code=201)


@router.get("", response_model=MerchantList)
async def list_merchants(
    request: Request, q: ListQuery = Depends(list_query("mer"))
) -> JSONResponse:
    page = await container_of(request).merchants.list(principal_of(request), q.page)
    return JSONResponse(
        list_json([merchant_json(m) for m in page.data], page.has_more, "/v1/merchants")
    )


@router.get("/{merchant_id}", response_model=Merchant)
async def get_merchant(request: Request, merchant_id: MerchantId) -> JSONResponse:
    merchant = await container_of(request).merchants.get(principal_of(request), merchant_id)
    return JSONResponse(merchant_json(merchant))


@router.patch(
    "/{merchant_id}",
    response_model=Merchant,
    responses=answers(409),  # a status the current one cannot become (closed is final)
)
async def update_merchant(
    request: Request, merchant_id: MerchantId, body: MerchantUpdate
) -> JSONResponse:
    merchant = await container_of(request).merchants.update(
        principal_of(request),
        origin_of(request),
        merchant_id,
        MerchantPatch(
            name=body.name,
            status=None if body.status is None else MerchantStatus(body.status),
            pricing=_dump(body.pricing),
            payout_delay_days=body.payout_delay_days,
            reserve=_dump(body.reserve),
            metadata=body.metadata,
        ),
    )
    return JSONResponse(merchant_json(merchant))


@router.post(
    "/{merchant_id}/keys",
    status_code=201,
    response_model=NewMerchantKey,
    response_description="The key with its secret, shown in this answer only.",
)
async def create_key(
    request: Request, merchant_id: MerchantId, body: KeyCreate | None = None
) -> JSONResponse:
    expires_at = (
        datetime.fromtimestamp(body.expires_at, UTC)
        if body is not None and body.expires_at is not None
        else None
    )
    issued = await container_of(request).merchants.create_key(
        principal_of(request), origin_of(request), merchant_id, expires_at
    )
    return JSONResponse(key_json(issued.key, issued.secret), status_code=201)


@router.get("/{merchant_id}/keys", response_model=MerchantKeyList)
async def list_keys(
    request: Request, merchant_id: MerchantId, q: ListQuery = Depends(list_query("key"))
) -> JSONResponse:
    page = await container_of(request).merchants.list_keys(
        principal_of(request), merchant_id, q.page
    )
    return JSONResponse(
        list_json(
            [key_json(k) for k in page.data], page.has_more, f"/v1/merchants/{merchant_id}/keys"
        )
    )


@router.delete(
    "/{merchant_id}/keys/{key_id}",
    response_model=MerchantKey,
    response_description="The key, revoked (revoking it again changes nothing).",
)
async def revoke_key(request: Request, merchant_id: MerchantId, key_id: KeyId) -> JSONResponse:
    key = await container_of(request).merchants.revoke_key(
        principal_of(request), origin_of(request), merchant_id, key_id
    )
    return JSONResponse(key_json(key))
