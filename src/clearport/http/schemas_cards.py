"""Card and bank-account request bodies and their JSON: at most BIN + last 4, never a number."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from clearport.core.clock import unix_seconds
from clearport.core.sensitive import SensitiveStr
from clearport.http.models.base import Currency
from clearport.http.schemas import CountryCode, StrictModel
from clearport.vault.cards import MAX_HOLDER_NAME_LEN, CardInput, StoredCard
from clearport.vault.domain import BankAccountView

# Digits, with the spaces or dashes people type between groups. The domain checks the rest (12 to
# 19 digits, Luhn, a brand we accept, its length) with codes of its own (`incorrect_number`).
CardNumber = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32, pattern=r"^[0-9][0-9 -]*$"),
    Field(description="The card number (PAN): never shown again, never logged."),
]
ExpiryMonth = Annotated[int, Field(ge=1, le=12)]
HolderName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_HOLDER_NAME_LEN)]


class CardBody(StrictModel):
    number: CardNumber
    exp_month: ExpiryMonth
    exp_year: int = Field(description="Four digits; a past expiry is 400 `expired_card`.")
    holder_name: HolderName | None = None

    def to_input(self) -> CardInput:
        return CardInput(
            number=SensitiveStr(self.number),
            exp_month=self.exp_month,
            exp_year=self.exp_year,
            holder_name=self.holder_name,
        )

    def __repr__(self) -> str:  # pydantic's repr would print the number
        return "CardBody([REDACTED])"

    __str__ = __repr__


class TokenCreate(StrictModel):
    card: CardBody


def card_json(card: StoredCard) -> dict[str, Any]:
    return {
        "brand": card.brand,
        "bin": card.bin,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "fingerprint": card.fingerprint,
    }


def token_json(card: StoredCard) -> dict[str, Any]:
    return {
        "id": card.token_id,
        "object": "token",
        "card": card_json(card),
        "created": unix_seconds(card.created_at),
    }


Digits = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class BankAccountPut(StrictModel):
    country: CountryCode
    currency: Currency
    account_holder: Annotated[str, StringConstraints(min_length=1, max_length=140)]
    routing_number: Digits | None = None
    account_number: Digits | None = None
    iban: Annotated[str, StringConstraints(min_length=1, max_length=50)] | None = None
    bic: Annotated[str, StringConstraints(min_length=1, max_length=11)] | None = Field(default=None)

    def __repr__(self) -> str:
        return "BankAccountPut([REDACTED])"

    __str__ = __repr__


def bank_account_json(view: BankAccountView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": view.id,
        "object": "bank_account",
        "merchant": view.merchant_id,
        "country": view.country,
        "currency": view.currency,
        "account_holder": view.account_holder,
    }
    if view.scheme == "iban":
        body["iban"] = view.display.get("iban")
        body["bic"] = view.bic
    else:
        body["routing_number"] = view.display.get("routing_number")
        body["account_number"] = view.display.get("account_number")
    body["updated"] = unix_seconds(view.updated_at)
    return body
