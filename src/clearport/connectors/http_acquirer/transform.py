"""The HTTP acquirer's wire format: requests built from our calls, answers mapped to ours.

The acquirer's API (its simulator is `clearport simulate http`):

    POST /v1/authorizations {reference, amount, currency, capture, card: {number, exp_month,
                             exp_year, cvc?}}
    POST /v1/captures       {reference, authorization, amount, currency}
    POST /v1/voids          {reference, authorization}
    POST /v1/refunds        {reference, authorization, amount, currency}
    POST /v1/reversals      {reference, original, amount, currency}
    GET  /v1/transactions/{reference}                       the status inquiry; 404 unknown

Every answer is `{reference, kind, result: approved | declined | error, reason_code (ISO 8583
DE39 values), approval_code?, network_ref?, state}`. An answer that does not parse, names
another reference or contradicts itself is malformed: the acquirer may have acted, so it reads
`UNKNOWN` (`processing_error`) and the call is reversed. Amounts are integer minor units and
currencies upper-case ISO 4217 alphabetic codes on this wire.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, assert_never

from clearport.connectors.domain import (
    ConnectorCard,
    ConnectorResult,
    ConnectorStatus,
    Failure,
    meaning,
    parse_response_code,
    result_for,
    unknown,
)


class AcquirerResult(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    ERROR = "error"


class AcquirerState(StrEnum):
    """What became of a transaction (status inquiries)."""

    APPROVED = "approved"
    CAPTURED = "captured"
    VOIDED = "voided"
    REVERSED = "reversed"
    DECLINED = "declined"
    ERROR = "error"


def authorization_body(
    reference: str, amount_minor: int, currency: str, card: ConnectorCard, *, capture: bool
) -> dict[str, Any]:
    """The one place the card number is revealed on this path: into the request body."""
    shown: dict[str, Any] = {
        "number": card.number.reveal(),
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
    }
    if card.cvc is not None:
        shown["cvc"] = card.cvc.reveal()
    return {
        "reference": reference,
        "amount": amount_minor,
        "currency": currency.upper(),
        "capture": capture,
        "card": shown,
    }


def follow_up_body(
    reference: str, authorization: str, amount_minor: int | None, currency: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"reference": reference, "authorization": authorization}
    if amount_minor is not None and currency is not None:
        body["amount"] = amount_minor
        body["currency"] = currency.upper()
    return body


def reversal_body(
    reference: str, original: str, amount_minor: int, currency: str
) -> dict[str, Any]:
    return {
        "reference": reference,
        "original": original,
        "amount": amount_minor,
        "currency": currency.upper(),
    }


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


def parse_answer(status_code: int, body: object, reference: str) -> ConnectorResult:
    """The acquirer's answer to a call under `reference`."""
    if status_code in (401, 403):  # refused before acting: our configuration is wrong
        return ConnectorResult(
            status=ConnectorStatus.ERROR, decline_code=str(Failure.PROCESSING_ERROR)
        )
    if status_code != 200 or not isinstance(body, dict) or body.get("reference") != reference:
        return unknown(Failure.PROCESSING_ERROR)
    code = parse_response_code(body.get("reason_code"))
    try:
        result = AcquirerResult(str(body.get("result")))
    except ValueError:
        return unknown(Failure.PROCESSING_ERROR)
    if code is None:
        return unknown(Failure.PROCESSING_ERROR)
    status, _ = meaning(code)
    match result:
        case AcquirerResult.APPROVED:
            consistent = status is ConnectorStatus.APPROVED
        case AcquirerResult.DECLINED:
            consistent = status is ConnectorStatus.DECLINED
        case AcquirerResult.ERROR:
            consistent = status is ConnectorStatus.ERROR
        case _:
            assert_never(result)
    if not consistent:
        return unknown(Failure.PROCESSING_ERROR)
    return result_for(
        code,
        auth_code=_text(body, "approval_code"),
        network_reference=_text(body, "network_ref"),
        reference=reference,
        operation=_text(body, "kind"),
    )


def parse_inquiry(status_code: int, body: object, reference: str) -> ConnectorResult:
    """A status inquiry's answer: what stands at the acquirer under `reference`."""
    if status_code == 404:
        return ConnectorResult(status=ConnectorStatus.NOT_FOUND, connector_reference=reference)
    answer = parse_answer(status_code, body, reference)
    if answer.status is ConnectorStatus.UNKNOWN or not isinstance(body, dict):
        return answer
    try:
        state = AcquirerState(str(body.get("state")))
    except ValueError:
        return unknown(Failure.PROCESSING_ERROR)
    match state:
        case AcquirerState.APPROVED | AcquirerState.CAPTURED:
            return answer
        case AcquirerState.DECLINED | AcquirerState.ERROR:
            return answer
        case AcquirerState.VOIDED | AcquirerState.REVERSED:
            # It was approved and no longer stands: for the call we ask about, nothing did.
            return ConnectorResult(status=ConnectorStatus.NOT_FOUND, connector_reference=reference)
        case _:
            assert_never(state)
