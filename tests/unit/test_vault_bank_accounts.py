"""Bank-account rules without I/O: what is sealed, what is shown, and the way back."""

from __future__ import annotations

import json

import pytest

from clearport.core.errors import InvalidRequest
from clearport.core.sensitive import SensitiveStr
from clearport.vault.domain import (
    BankAccount,
    bank_account_display,
    bank_account_from_payload,
    bank_account_payload,
    validate_bank_account,
)

US = BankAccount(
    "US", "usd", "Demo Coffee LLC", SensitiveStr("110000000"), SensitiveStr("000123456789")
)
SEPA = BankAccount(
    "de",
    "eur",
    "Demo Kaffee GmbH",
    iban=SensitiveStr("de89 3704 0044 0532 0130 00"),
    bic="cobadeffxxx",
)


def test_us_account_shows_the_routing_number_and_a_masked_account_number() -> None:
    account = validate_bank_account(US)
    assert account.scheme == "us_ach"
    assert bank_account_display(account) == {
        "routing_number": "110000000",
        "account_number": "****6789",
    }


def test_iban_is_normalized_and_shown_masked() -> None:
    account = validate_bank_account(SEPA)
    assert account.scheme == "iban"
    assert (account.country, account.bic) == ("DE", "COBADEFFXXX")
    assert account.iban is not None and account.iban.reveal() == "DE89370400440532013000"
    assert bank_account_display(account) == {"iban": "****3000"}


@pytest.mark.parametrize("account", [US, SEPA])
def test_payload_holds_only_the_secret_parts_and_round_trips(account: BankAccount) -> None:
    account = validate_bank_account(account)
    payload = bank_account_payload(account)
    assert account.account_holder.encode() not in payload
    assert set(json.loads(payload)) <= {"routing_number", "account_number", "iban"}
    back = bank_account_from_payload(
        payload,
        country=account.country,
        currency=account.currency,
        account_holder=account.account_holder,
        bic=account.bic,
    )
    assert back.scheme == account.scheme
    for name in ("routing_number", "account_number", "iban"):
        original, restored = getattr(account, name), getattr(back, name)
        assert (original is None) == (restored is None)
        if original is not None:
            assert restored.reveal() == original.reveal()


@pytest.mark.parametrize(
    ("account", "field"),
    [
        (
            BankAccount("US", "usd", "Shop", SensitiveStr("110000001"), US.account_number),
            "routing_number",
        ),
        (
            BankAccount(
                "DE", "eur", "Shop", iban=SensitiveStr("DE89370400440532013001"), bic="COBADEFF"
            ),
            "iban",
        ),
        (
            BankAccount("US", "usd", "Shop", US.routing_number, US.account_number, bic="COBADEFF"),
            "iban",
        ),
    ],
)
def test_invalid_accounts_name_the_field(account: BankAccount, field: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_bank_account(account)
    assert info.value.field == (field,)
