"""Operator keys (admin, security)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request

from clearport.access.domain import Role
from clearport.http.context import ApiRoute, container_of, origin_of, principal_of
from clearport.http.models.base import KeyId
from clearport.http.models.merchants import NewOperatorKey, OperatorKey
from clearport.http.responses import JSONResponse
from clearport.http.schemas import OperatorKeyCreate, key_json

router = APIRouter(prefix="/v1/operator_keys", route_class=ApiRoute, tags=["operators"])


@router.post(
    "",
    status_code=201,
    response_model=NewOperatorKey,
    response_description="The key with its secret, shown in this answer only.",
)
async def create_operator_key(request: Request, body: OperatorKeyCreate) -> JSONResponse:
    expires_at = None if body.expires_at is None else datetime.fromtimestamp(body.expires_at, UTC)
    issued = await container_of(request).merchants.create_operator_key(
        principal_of(request), origin_of(request), Role(body.role), expires_at
    )
    return JSONResponse(key_json(issued.key, issued.secret), status_code=201)


@router.delete(
    "/{key_id}",
    response_model=OperatorKey,
    response_description="The key, revoked (revoking it again changes nothing).",
)
async def revoke_operator_key(request: Request, key_id: KeyId) -> JSONResponse:
    key = await container_of(request).merchants.revoke_operator_key(
        principal_of(request), origin_of(request), key_id
    )
    return JSONResponse(key_json(key))
