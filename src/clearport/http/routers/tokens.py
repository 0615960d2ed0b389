"""Card tokens (merchant keys): POST /v1/tokens, GET /v1/tokens/{id}."""

from __future__ import annotations

from fastapi import APIRouter, Request

from clearport.http.context import (
    ApiRoute,
    claim_of,
    claims_in_transaction,
    container_of,
    principal_of,
)
from clearport.http.models.base import TokenId
from clearport.http.models.vault import Token
from clearport.http.openapi import answers
from clearport.http.responses import JSONResponse
from clearport.http.schemas_cards import TokenCreate, token_json

router = APIRouter(prefix="/v1/tokens", route_class=ApiRoute, tags=["tokens"])


@router.post("", status_code=201, response_model=Token, responses=answers(404))
@claims_in_transaction
async def create_token(request: Request, body: TokenCreate) -> JSONResponse:
    card = await container_of(request).vault.create_token(
        principal_of(request), body.card.to_input(), claim_of(request)
    )
    return JSONResponse(token_json(card), status_code=201)


@router.get("/{token_id}", response_model=Token)
async def get_token(request: Request, token_id: TokenId) -> JSONResponse:
    card = await container_of(request).vault.read_token(principal_of(request), token_id)
    return JSONResponse(token_json(card))
