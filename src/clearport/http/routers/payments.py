"""Payments, refunds and per-merchant payment settings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

from clearport.core.errors import InvalidRequest, present
from clearport.core.money import MAX_AMOUNT_MINOR
from clearport.core.sensitive import SensitiveStr
from clearport.http.context import (
    ApiRoute,
    claim_of,
    claims_in_transaction,
    container_of,
    principal_of,
)
from clearport.http.listing import ListQuery, list_query
from clearport.http.models.base import Currency, MerchantId, PaymentId, RefundId, TokenId
from clearport.http.models.payments import (
    Payment,
    PaymentList,
    PaymentSettings,
    Refund,
    RefundList,
)
from clearport.http.openapi import answers
from clearport.http.representation import payment_json, refund_json
from clearport.http.responses import JSONResponse
from clearport.http.schemas import Metadata, ShortText, StrictModel, list_json
from clearport.http.schemas_cards import EXAMPLE_CARD, CardNumber, ExpiryMonth, HolderName
from clearport.payments.domain import PaymentStatus, RefundStatus
from clearport.payments.service import InlineCard, NewPayment, TokenSource
from clearport.vault.cards import CardInput

router = APIRouter(route_class=ApiRoute, tags=["payments"])

# The digits a card's brand needs (3, 4 for American Express) are checked with the card, with
# their own error code (`incorrect_cvc`).
Cvc = Annotated[str, StringConstraints(min_length=1, max_length=8)]
# The configured maximum (PAYMENT_MAX_AMOUNT_MINOR, 100,000,000 by default) may be lower; above
# it the answer is 400 `amount_too_large`.
Amount = Annotated[
    int, Field(ge=1, le=MAX_AMOUNT_MINOR, description="In minor units of the currency.")
]


class PaymentCard(StrictModel):
    number: CardNumber
    exp_month: ExpiryMonth
    exp_year: int
    cvc: Cvc | None = None
    holder_name: HolderName | None = None

    def __repr__(self) -> str:  # pydantic's repr would print the number and the CVC
        return "PaymentCard([REDACTED])"

    __str__ = __repr__


# Exactly one of `card` and `token` (a null one counts as absent); `cvc` beside a token only.
_ONE_SOURCE: JsonDict = {
    "oneOf": [
        {
            "required": ["card"],
            "properties": {
                "card": {"type": "object"},
                "token": {"type": "null"},
                "cvc": {"type": "null"},
            },
        },
        {
            "required": ["token"],
            "properties": {"token": {"type": "string"}, "card": {"type": "null"}},
        },
    ]
}


class PaymentSource(StrictModel):
    model_config = ConfigDict(json_schema_extra=_ONE_SOURCE)

    card: PaymentCard | None = None
    token: TokenId | None = None
    cvc: Cvc | None = None

    def __repr__(self) -> str:
        return "PaymentSource([REDACTED])"

    __str__ = __repr__


class PaymentCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "amount": 2599,
                    "currency": "usd",
                    "source": {"card": {**EXAMPLE_CARD, "cvc": "123"}},
                    "capture": False,
                    "reference": "order-1234",
                    "metadata": {"order": "1234"},
                }
            ]
        }
    )

    amount: Amount
    currency: Currency
    source: PaymentSource
    capture: bool = False
    reference: ShortText | None = None
    metadata: Metadata | None = None

    def __repr__(self) -> str:
        return "PaymentCreate([REDACTED])"

    __str__ = __repr__


class CaptureBody(StrictModel):
    amount: Amount | None = None


class RefundCreate(StrictModel):
    amount: Amount | None = None
    reason: ShortText | None = None


class PaymentSettingsBody(StrictModel):
    require_cvc: bool


def _source(body: PaymentSource) -> InlineCard | TokenSource:
    if (body.card is None) == (body.token is None):
        raise InvalidRequest("'source' must hold exactly one of 'card' or 'token'.", field="source")
    if body.card is not None:
        if body.cvc is not None:
            raise InvalidRequest(
                "With an inline card, give the CVC as 'source[card][cvc]'.", field=("source", "cvc")
            )
        card = body.card
        return InlineCard(
            CardInput(
                number=SensitiveStr(card.number),
                exp_month=card.exp_month,
                exp_year=card.exp_year,
                holder_name=card.holder_name,
            ),
            None if card.cvc is None else SensitiveStr(card.cvc),
        )
    token = present(body.token, "a source without a card has a token")
    return TokenSource(token, None if body.cvc is None else SensitiveStr(body.cvc))


@router.post(
    "/v1/payments",
    status_code=201,
    response_model=Payment,
    response_description="The payment: a declined card is a payment with status `declined`.",
    # 502: no connector to send it to (the configured order names none usable), nothing written.
    responses=answers(404, 502),
)
@claims_in_transaction
async def create_payment(request: Request, body: PaymentCreate) -> JSONResponse:
    payment = await container_of(request).payments.create(
        principal_of(request),
        NewPayment(
            amount=body.amount,
            currency=body.currency,
            source=_source(body.source),
            capture=body.capture,
            reference=body.reference,
            metadata=body.metadata or {},
        ),
        claim_of(request),
    )
    return JSONResponse(payment_json(payment), status_code=201)


class PaymentFilters:
    def __init__(
        self,
        status: PaymentStatus | None = Query(None),
        reference: str | None = Query(None, max_length=200),
    ) -> None:
        self.status = status
        self.reference = reference


@router.get("/v1/payments", response_model=PaymentList)
async def list_payments(
    request: Request, q: ListQuery = Depends(list_query("pay")), f: PaymentFilters = Depends()
) -> JSONResponse:
    page = await container_of(request).payments.list(
        principal_of(request),
        q.page,
        {
            "status": f.status,
            "reference": f.reference,
            "created_gte": q.created_gte,
            "created_lt": q.created_lt,
        },
    )
    return JSONResponse(
        list_json([payment_json(p) for p in page.data], page.has_more, "/v1/payments")
    )


@router.get("/v1/payments/{payment_id}", response_model=Payment)
async def get_payment(request: Request, payment_id: PaymentId) -> JSONResponse:
    payment = await container_of(request).payments.get(principal_of(request), payment_id)
    return JSONResponse(payment_json(payment))


@router.post("/v1/payments/{payment_id}/capture", response_model=Payment, responses=answers(502))
@claims_in_transaction
async def capture_payment(
    request: Request, payment_id: PaymentId, body: CaptureBody | None = None
) -> JSONResponse:
    payment = await container_of(request).payments.capture(
        principal_of(request), payment_id, None if body is None else body.amount, claim_of(request)
    )
    return JSONResponse(payment_json(payment))


@router.post("/v1/payments/{payment_id}/void", response_model=Payment, responses=answers(502))
@claims_in_transaction
async def void_payment(request: Request, payment_id: PaymentId) -> JSONResponse:
    payment = await container_of(request).payments.void(
        principal_of(request), payment_id, claim_of(request)
    )
    return JSONResponse(payment_json(payment))


@router.post(
    "/v1/payments/{payment_id}/refunds",
    status_code=201,
    response_model=Refund,
    responses=answers(502),
)
@claims_in_transaction
async def create_refund(
    request: Request, payment_id: PaymentId, body: RefundCreate | None = None
) -> JSONResponse:
    refund = await container_of(request).payments.refund(
        principal_of(request),
        payment_id,
        None if body is None else body.amount,
        None if body is None else body.reason,
        claim_of(request),
    )
    return JSONResponse(refund_json(refund), status_code=201)


@router.get("/v1/refunds", response_model=RefundList)
async def list_refunds(
    request: Request,
    q: ListQuery = Depends(list_query("rfd")),
    payment: PaymentId | None = Query(None),
    status: RefundStatus | None = Query(None),
) -> JSONResponse:
    page = await container_of(request).payments.list_refunds(
        principal_of(request),
        q.page,
        {
            "payment_id": payment,
            "status": status,
            "created_gte": q.created_gte,
            "created_lt": q.created_lt,
        },
    )
    return JSONResponse(
        list_json([refund_json(r) for r in page.data], page.has_more, "/v1/refunds")
    )


@router.get("/v1/refunds/{refund_id}", response_model=Refund)
async def get_refund(request: Request, refund_id: RefundId) -> JSONResponse:
    refund = await container_of(request).payments.get_refund(principal_of(request), refund_id)
    return JSONResponse(refund_json(refund))


def _settings_json(merchant_id: str, require_cvc: bool) -> dict[str, Any]:
    return {"object": "payment_settings", "merchant": merchant_id, "require_cvc": require_cvc}


@router.get("/v1/merchants/{merchant_id}/payment_settings", response_model=PaymentSettings)
async def get_payment_settings(request: Request, merchant_id: MerchantId) -> JSONResponse:
    value = await container_of(request).merchants.require_cvc(principal_of(request), merchant_id)
    return JSONResponse(_settings_json(merchant_id, value))


@router.put("/v1/merchants/{merchant_id}/payment_settings", response_model=PaymentSettings)
async def put_payment_settings(
    request: Request, merchant_id: MerchantId, body: PaymentSettingsBody
) -> JSONResponse:
    await container_of(request).merchants.set_require_cvc(
        principal_of(request), merchant_id, body.require_cvc
    )
    return JSONResponse(_settings_json(merchant_id, body.require_cvc))
