"""A merchant's payout bank account (operators): stored encrypted, shown masked."""

from __future__ import annotations

from fastapi import APIRouter, Request

from clearport.core.sensitive import SensitiveStr
from clearport.http.context import ApiRoute, container_of, origin_of, principal_of
from clearport.http.models import vault as shown
from clearport.http.models.base import MerchantId
from clearport.http.openapi import answers
from clearport.http.responses import JSONResponse
from clearport.http.schemas_cards import BankAccountPut, bank_account_json
from clearport.vault.domain import BankAccount

router = APIRouter(prefix="/v1/merchants", route_class=ApiRoute, tags=["merchants"])


def _secret(value: str | None) -> SensitiveStr | None:
    return None if value is None else SensitiveStr(value)


@router.put(
    "/{merchant_id}/bank_account",
    response_model=shown.BankAccount,
    responses=answers(409),  # a closed merchant gets no bank account
)
async def put_bank_account(
    request: Request, merchant_id: MerchantId, body: BankAccountPut
) -> JSONResponse:
    view = await container_of(request).vault.set_bank_account(
        principal_of(request),
        origin_of(request),
        merchant_id,
        BankAccount(
            country=body.country,
            currency=body.currency,
            account_holder=body.account_holder,
            routing_number=_secret(body.routing_number),
            account_number=_secret(body.account_number),
            iban=_secret(body.iban),
            bic=body.bic,
        ),
    )
    return JSONResponse(bank_account_json(view))


@router.get("/{merchant_id}/bank_account", response_model=shown.BankAccount)
async def get_bank_account(request: Request, merchant_id: MerchantId) -> JSONResponse:
    view = await container_of(request).vault.get_bank_account(principal_of(request), merchant_id)
    return JSONResponse(bank_account_json(view))
