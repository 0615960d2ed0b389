"""The request schemas state the rules the server applies (so the document's fuzzer and its
readers meet no surprise): the one-of alternatives of a payment's source and of a bank account
agree with the checks behind them, case by case."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from clearport.core.errors import InvalidRequest
from clearport.core.sensitive import SensitiveStr
from clearport.http.routers.payments import PaymentSource, _source
from clearport.http.schemas_cards import BankAccountPut
from clearport.vault.domain import BankAccount, validate_bank_account

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}
TOKEN = "tok_01M972NHC70DC1BZSPCEZ10BAA"


def _schema_accepts(model: type[Any], document: dict[str, Any]) -> bool:
    return Draft202012Validator(model.model_json_schema()).is_valid(document)


@pytest.mark.parametrize(
    "source",
    [
        {"card": CARD},
        {"token": TOKEN},
        {"token": TOKEN, "cvc": "123"},
        {"card": CARD, "token": None},
        {"card": None, "token": TOKEN},
        {"card": CARD, "token": TOKEN},
        {"card": CARD, "cvc": "123"},
        {"card": CARD, "token": TOKEN, "cvc": "123"},
        {},
        {"card": None, "token": None},
        {"cvc": "123"},
    ],
)
def test_the_source_schema_accepts_what_the_server_accepts(source: dict[str, Any]) -> None:
    try:
        _source(PaymentSource.model_validate(source))
        accepted = True
    except InvalidRequest:
        accepted = False
    assert _schema_accepts(PaymentSource, source) is accepted


US = {"routing_number": "110000000", "account_number": "000123456789"}
SEPA = {"iban": "DE89370400440532013000", "bic": "COBADEFFXXX"}


@pytest.mark.parametrize(
    "fields",
    [
        US,
        SEPA,
        {**US, **SEPA},
        {**US, "iban": SEPA["iban"]},
        {**SEPA, "account_number": US["account_number"]},
        {"routing_number": US["routing_number"]},
        {"iban": SEPA["iban"]},
        {**US, "iban": None, "bic": None},
        {},
        {**US, "account_number": "123"},
        {**US, "account_number": "1" * 18},
        {**SEPA, "bic": "COBADEFF0"},
        {**SEPA, "bic": "cobadeff"},
        {**US, "routing_number": "11000000"},
    ],
)
def test_the_bank_account_schema_accepts_what_the_domain_accepts(fields: dict[str, Any]) -> None:
    body = {"country": "US", "currency": "usd", "account_holder": "Demo", **fields}

    def secret(name: str) -> SensitiveStr | None:
        value = body.get(name)
        return None if value is None else SensitiveStr(value)

    try:
        validate_bank_account(
            BankAccount(
                country=body["country"],
                currency=body["currency"],
                account_holder=body["account_holder"],
                routing_number=secret("routing_number"),
                account_number=secret("account_number"),
                iban=secret("iban"),
                bic=body.get("bic"),
            )
        )
        accepted = True
    except InvalidRequest:
        accepted = False
    assert _schema_accepts(BankAccountPut, body) is accepted
