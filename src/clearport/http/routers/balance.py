"""A merchant's balance and balance transactions (API.md "Balances").

Merchant keys see their own; operators (finance.read) pass `?merchant=mer_…`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from clearport.core.clock import unix_seconds
from clearport.core.errors import InvalidRequest
from clearport.http.context import ApiRoute, container_of, principal_of
from clearport.http.listing import ListQuery, list_query
from clearport.http.models.base import MerchantId, enum_of
from clearport.http.models.settlement import Balance, BalanceTransactionList
from clearport.http.openapi import answers
from clearport.http.responses import JSONResponse
from clearport.http.schemas import list_json
from clearport.ledger.domain import BALANCE_TRANSACTION_TYPES, AccountKind, BalanceTransaction

router = APIRouter(prefix="/v1", route_class=ApiRoute, tags=["balance"])


def balance_transaction_json(t: BalanceTransaction) -> dict[str, Any]:
    return {
        "id": t.id,
        "object": "balance_transaction",
        "type": t.type,
        "amount": t.amount_minor,
        "fee": 0,  # fees are their own balance transactions (type "fee")
        "net": t.amount_minor,
        "currency": t.currency,
        "source": t.source,
        "status": t.status,
        "available_on": unix_seconds(t.available_on),
        "created": unix_seconds(t.created_at),
    }


MERCHANT_OF_OPERATOR = "The merchant, for operator keys; a merchant key sees its own."


@router.get("/balance", response_model=Balance, responses=answers(404))
async def get_balance(
    request: Request, merchant: MerchantId | None = Query(None, description=MERCHANT_OF_OPERATOR)
) -> JSONResponse:
    balances = await container_of(request).ledger.merchant_balance(principal_of(request), merchant)
    body: dict[str, Any] = {"object": "balance"}
    for kind in (AccountKind.PENDING, AccountKind.AVAILABLE, AccountKind.RESERVE):
        body[str(kind)] = [
            {"amount": amount, "currency": currency}
            for currency, amount in sorted(balances.get(kind, {}).items())
        ]
    return JSONResponse(body)


@router.get("/balance_transactions", response_model=BalanceTransactionList, responses=answers(404))
async def list_balance_transactions(
    request: Request,
    q: ListQuery = Depends(list_query("txn")),
    type: str | None = Query(
        None, max_length=32, json_schema_extra=enum_of(BALANCE_TRANSACTION_TYPES)
    ),
    merchant: MerchantId | None = Query(None, description=MERCHANT_OF_OPERATOR),
) -> JSONResponse:
    if type is not None and type not in BALANCE_TRANSACTION_TYPES:
        raise InvalidRequest(
            "'type' must be one of " + ", ".join(sorted(BALANCE_TRANSACTION_TYPES)) + ".",
            field="type",
        )
    page = await container_of(request).ledger.list_balance_transactions(
        principal_of(request),
        merchant,
        q.page,
        {"type": type, "created_gte": q.created_gte, "created_lt": q.created_lt},
    )
    return JSONResponse(
        list_json(
            [balance_transaction_json(t) for t in page.data],
            page.has_more,
            "/v1/balance_transactions",
        )
    )
