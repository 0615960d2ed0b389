"""The HTTP acquirer's transformers against answers recorded from `clearport simulate http`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clearport.connectors.domain import ConnectorCard, ConnectorStatus
from clearport.connectors.http_acquirer.transform import (
    authorization_body,
    parse_answer,
    parse_inquiry,
    reversal_body,
)
from clearport.core.sensitive import SensitiveStr

REF = "att_01JREC0RDEDHTTP000007986"

# Recorded from `clearport simulate http`.
APPROVED = (
    '{"reference":"att_01JREC0RDEDHTTP000007986","kind":"authorize","result":"approved",'
    '"reason_code":"00","approval_code":"426730","network_ref":"HTATTP000007986",'
    '"state":"approved"}'
)
DECLINED = (
    '{"reference":"att_01JREC0RDEDHTTP000007986X","kind":"sale","result":"declined",'
    '"reason_code":"54","approval_code":null,"network_ref":"HTATP000007986X","state":"declined"}'
)
REVERSED_ON_INQUIRY = (
    '{"reference":"att_01JREC0RDEDHTTP000007986","kind":"authorize","result":"approved",'
    '"reason_code":"00","approval_code":"426730","network_ref":"HTATTP000007986",'
    '"state":"reversed"}'
)
NOT_FOUND = '{"error":"not_found"}'


def _body(text: str) -> Any:
    return json.loads(text)


def test_recorded_answers_map_to_results() -> None:
    approved = parse_answer(200, _body(APPROVED), REF)
    assert (approved.status, approved.response_code, approved.auth_code) == (
        ConnectorStatus.APPROVED,
        "00",
        "426730",
    )
    assert approved.network_reference == "HTATTP000007986"
    declined = parse_answer(200, _body(DECLINED), REF + "X")
    assert (declined.status, declined.decline_code, declined.auth_code) == (
        ConnectorStatus.DECLINED,
        "expired_card",
        None,
    )


def test_inquiries_say_what_stands() -> None:
    assert parse_inquiry(200, _body(APPROVED), REF).status is ConnectorStatus.APPROVED
    # Approved once, reversed since: for the call we ask about, nothing stands.
    assert parse_inquiry(200, _body(REVERSED_ON_INQUIRY), REF).status is ConnectorStatus.NOT_FOUND
    assert parse_inquiry(404, _body(NOT_FOUND), REF).status is ConnectorStatus.NOT_FOUND


@pytest.mark.parametrize(
    ("status_code", "body"),
    [
        (200, "not json at all"),
        (200, {**json.loads(APPROVED), "reference": "att_someone_else"}),
        (200, {**json.loads(APPROVED), "reason_code": "05"}),  # approved with a decline code
        (200, {**json.loads(APPROVED), "result": "maybe"}),
        (200, {**json.loads(APPROVED), "reason_code": "Z9"}),
        (500, {"error": "internal"}),
        (502, None),
    ],
)
def test_an_answer_that_cannot_be_trusted_is_unknown(status_code: int, body: object) -> None:
    """The acquirer may have acted: UNKNOWN (processing_error), to be reversed."""
    result = parse_answer(status_code, body, REF)
    assert (result.status, result.decline_code) == (ConnectorStatus.UNKNOWN, "processing_error")


def test_a_refused_key_is_a_technical_refusal() -> None:
    result = parse_answer(401, {"error": "unauthorized"}, REF)
    assert (result.status, result.decline_code) == (ConnectorStatus.ERROR, "processing_error")


def test_requests_carry_upper_case_currency_and_the_card_only_where_needed() -> None:
    card = ConnectorCard(SensitiveStr("4242424242424242"), 12, 2030, SensitiveStr("123"))
    body = authorization_body(REF, 2599, "usd", card, capture=True)
    assert body == {
        "reference": REF,
        "amount": 2599,
        "currency": "USD",
        "capture": True,
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    }
    assert reversal_body("att_r", REF, 2599, "eur") == {
        "reference": "att_r",
        "original": REF,
        "amount": 2599,
        "currency": "EUR",
    }
