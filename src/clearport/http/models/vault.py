"""Card tokens and payout bank accounts, as the API shows them (`http/schemas_cards.py`):
at most BIN and last 4 of a card, masked tails of an account."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, RootModel, StringConstraints

from clearport.http.models.base import (
    BankAccountId,
    Currency,
    MerchantId,
    ResponseModel,
    Timestamp,
    TokenId,
)
from clearport.vault.cards import Brand

Bin = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{6}([0-9]{2})?$"),
    Field(description="The first 8 digits (6 for numbers shorter than 16)."),
]
Last4 = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
MaskedTail = Annotated[
    str,
    StringConstraints(pattern=r"^\*{4}.{1,4}$"),
    Field(description="Masked: the last four characters."),
]


class Card(ResponseModel):
    """What may be shown of a card: never more than BIN and last 4."""

    brand: Brand
    bin: Bin
    last4: Last4
    exp_month: int = Field(ge=1, le=12)
    exp_year: int
    fingerprint: str = Field(description="The same for the same number within a merchant.")
    funding: Literal["credit", "debit", "prepaid"] | None = Field(
        description="From the BIN table (`clearport bins import`); null: the BIN is not listed."
    )
    category: Literal["consumer", "commercial"] | None = Field(
        description="From the BIN table; null: the BIN is not listed."
    )
    issuer_country: str | None = Field(
        pattern=r"^[A-Z]{2}$", description="From the BIN table; null: the BIN is not listed."
    )


class Token(ResponseModel):
    id: TokenId
    object: Literal["token"]
    card: Card
    created: Timestamp


class _BankAccount(ResponseModel):
    id: BankAccountId
    object: Literal["bank_account"]
    merchant: MerchantId
    country: str = Field(pattern=r"^[A-Z]{2}$")
    currency: Currency
    account_holder: str


class IbanBankAccount(_BankAccount):
    iban: MaskedTail
    bic: str | None
    updated: Timestamp


class RoutingBankAccount(_BankAccount):
    routing_number: str
    account_number: MaskedTail
    updated: Timestamp


class BankAccount(RootModel[IbanBankAccount | RoutingBankAccount]):
    """An IBAN account (SEPA) or a routing and account number (ACH)."""
