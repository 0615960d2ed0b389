"""Payments, refunds and per-merchant payment settings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StringConstraints

from clearport.core.errors import InvalidRequest, present
from clearport.core.ids import parse_id
from clearport.core.money import MAX_AMOUNT_MINOR
from clearport.core.sensitive import SensitiveStr
from clearport.http.context import ApiRoute, claim_of, container_of, principal_of
from clearport.http.listing import ListQuery
from clearport.http.representation import payment_json, refund_json
from clearport.http.schemas import Metadata, StrictModel, list_json
from clearport.payments.service import InlineCard, NewPayment, TokenSource
from clearport.vault.cards import CardInput

router = APIRouter(route_class=ApiRoute, tags=["payments"])

Cvc = Annotated[str, StringConstraints(min_length=1, max_length=8)]
PaymentStatusName = Literal[
    "pending", "authorized", "captured", "refunded", "voided", "expired", "declined", "failed"
]
Amount = Annotated[int, Field(ge=-MAX_AMOUNT_MINOR * 10, le=MAX_AMOUNT_MINOR * 10)]


class PaymentCard(StrictModel):
    number: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    exp_month: int
    exp_year: int
    cvc: Cvc | None = None
    holder_name: Annotated[str, StringConstraints(max_length=200)] | None = None

    def __repr__(self) -> str:  # pydantic's repr would print the number and the CVC
        return "PaymentCard([REDACTED])"

    __str__ = __repr__


class PaymentSource(StrictModel):
    card: PaymentCard | None = None
    token: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    cvc: Cvc | None = None

    def __repr__(self) -> str:
        return "PaymentSource([REDACTED])"

    __str__ = __repr__


class PaymentCreate(StrictModel):
    amount: Amount
    currency: Annotated[str, StringConstraints(min_length=1, max_length=8)]
    source: PaymentSource
    capture: bool = False
    reference: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    metadata: Metadata | None = None

    def __repr__(self) -> str:
        return "PaymentCreate([REDACTED])"

    __str__ = __repr__


class CaptureBody(StrictModel):
    amount: Amount | None = None


class RefundCreate(StrictModel):
    amount: Amount | None = None
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


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
    token = parse_id(
        present(body.token, "a source without a card has a token"), "tok", field=("source", "token")
    )
    return TokenSource(token, None if body.cvc is None else SensitiveStr(body.cvc))


@router.post("/v1/payments", status_code=201)
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
        status: PaymentStatusName | None = Query(None),
        reference: str | None = Query(None, max_length=200),
    ) -> None:
        self.status = status
        self.reference = reference


@router.get("/v1/payments")
async def list_payments(
    request: Request, q: ListQuery = Depends(), f: PaymentFilters = Depends()
) -> JSONResponse:
    page = await container_of(request).payments.list(
        principal_of(request),
        q.page("pay"),
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


@router.get("/v1/payments/{payment_id}")
async def get_payment(request: Request, payment_id: str) -> JSONResponse:
    payment = await container_of(request).payments.get(principal_of(request), payment_id)
    return JSONResponse(payment_json(payment))


@router.post("/v1/payments/{payment_id}/capture")
async def capture_payment(
    request: Request, payment_id: str, body: CaptureBody | None = None
) -> JSONResponse:
    payment = await container_of(request).payments.capture(
        principal_of(request), payment_id, None if body is None else body.amount, claim_of(request)
    )
    return JSONResponse(payment_json(payment))


@router.post("/v1/payments/{payment_id}/void")
async def void_payment(request: Request, payment_id: str) -> JSONResponse:
    payment = await container_of(request).payments.void(
        principal_of(request), payment_id, claim_of(request)
    )
    return JSONResponse(payment_json(payment))


@router.post("/v1/payments/{payment_id}/refunds", status_code=201)
async def create_refund(
    request: Request, payment_id: str, body: RefundCreate | None = None
) -> JSONResponse:
    refund = await container_of(request).payments.refund(
        principal_of(request),
        payment_id,
        None if body is None else body.amount,
        None if body is None else body.reason,
        claim_of(request),
    )
    return JSONResponse(refund_json(refund), status_code=201)


@router.get("/v1/refunds")
async def list_refunds(
    request: Request,
    q: ListQuery = Depends(),
    payment: str | None = Query(None, max_length=64),
    status: Literal["pending", "succeeded", "failed"] | None = Query(None),
) -> JSONResponse:
    page = await container_of(request).payments.list_refunds(
        principal_of(request),
        q.page("rfd"),
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


@router.get("/v1/refunds/{refund_id}")
async def get_refund(request: Request, refund_id: str) -> JSONResponse:
    refund = await container_of(request).payments.get_refund(principal_of(request), refund_id)
    return JSONResponse(refund_json(refund))


def _settings_json(merchant_id: str, require_cvc: bool) -> dict[str, Any]:
    return {"object": "payment_settings", "merchant": merchant_id, "require_cvc": require_cvc}


@router.get("/v1/merchants/{merchant_id}/payment_settings")
async def get_payment_settings(request: Request, merchant_id: str) -> JSONResponse:
    value = await container_of(request).merchants.require_cvc(principal_of(request), merchant_id)
    return JSONResponse(_settings_json(merchant_id, value))


@router.put("/v1/merchants/{merchant_id}/payment_settings")
async def put_payment_settings(
    request: Request, merchant_id: str, body: PaymentSettingsBody
) -> JSONResponse:
    await container_of(request).merchants.set_require_cvc(
        principal_of(request), merchant_id, body.require_cvc
    )
    return JSONResponse(_settings_json(merchant_id, body.require_cvc))
