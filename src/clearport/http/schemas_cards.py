"""Card and bank-account request bodies and their JSON: at most BIN + last 4, never a number."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

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


def example_expiry_year() -> int:
    """A year the examples' test card is valid through, whatever year the document is read."""
    return datetime.now(UTC).year + 4


EXAMPLE_CARD: JsonDict = {
    "number": "4242424242424242",
    "exp_month": 12,
    "exp_year": example_expiry_year(),
    "holder_name": "Jane Doe",
}


class TokenCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"card": EXAMPLE_CARD}]})

    card: CardBody


def card_json(card: StoredCard) -> dict[str, Any]:
    return {
        "brand": card.brand,
        "bin": card.bin,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "fingerprint": card.fingerprint,
        "funding": card.funding,
        "category": card.category,
        "issuer_country": card.issuer_country,
    }


def token_json(card: StoredCard) -> dict[str, Any]:
    return {
        "id": card.token_id,
        "object": "token",
        "card": card_json(card),
        "created": unix_seconds(card.created_at),
    }


# What the domain checks (vault/domain.validate_bank_account), as patterns the document states;
# the ABA checksum and the IBAN's mod-97 check digits it checks alone.
RoutingNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{9}$")]
AccountNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{4,17}$")]
Bic = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{8}([A-Za-z0-9]{3})?$")]


def _only(present: tuple[str, str], absent: tuple[str, str]) -> JsonDict:
    """A schema branch: both fields of `present` given, neither of `absent` (null is absent)."""
    return {
        "required": list(present),
        "properties": {
            **{name: {"type": "string"} for name in present},
            **{name: {"type": "null"} for name in absent},
        },
    }


US_FIELDS = ("routing_number", "account_number")
SEPA_FIELDS = ("iban", "bic")


class BankAccountPut(StrictModel):
    # Either a US account or an IBAN with its BIC, never both (checked again by the domain).
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [_only(US_FIELDS, SEPA_FIELDS), _only(SEPA_FIELDS, US_FIELDS)],
            "examples": [
                {
                    "country": "US",
                    "currency": "usd",
                    "account_holder": "Demo Coffee LLC",
                    "routing_number": "110000000",
                    "account_number": "000123456789",
                },
                {
                    "country": "DE",
                    "currency": "eur",
                    "account_holder": "Demo Kaffee GmbH",
                    "iban": "DE89370400440532013000",
                    "bic": "COBADEFFXXX",
                },
            ],
        }
    )

    country: CountryCode
    currency: Currency
    account_holder: Annotated[str, StringConstraints(min_length=1, max_length=140)]
    routing_number: RoutingNumber | None = None
    account_number: AccountNumber | None = None
    iban: Annotated[str, StringConstraints(min_length=1, max_length=50)] | None = None
    bic: Bic | None = None

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
