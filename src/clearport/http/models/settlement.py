"""Balances, balance transactions, settlement runs, settlements, their items and payouts, as the
API shows them (`http/routers/balance.py`, `http/routers/settlements.py`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from clearport.http.models.base import (
    AnyId,
    BalanceTransactionId,
    BusinessDate,
    Currency,
    ListOf,
    MerchantId,
    PaymentId,
    PayoutId,
    ResponseModel,
    RunId,
    SettlementId,
    Timestamp,
    enum_of,
)
from clearport.ledger.domain import BALANCE_TRANSACTION_TYPES
from clearport.settlement.domain import ITEM_KINDS, PAYOUT_TRANSITIONS
from clearport.vault.cards import Brand


class Amount(ResponseModel):
    amount: int
    currency: Currency


class Balance(ResponseModel):
    """A merchant's balances, one line per currency."""

    object: Literal["balance"]
    pending: list[Amount] = Field(description="Captured (or disputed, adjusted), not settled yet.")
    available: list[Amount] = Field(
        description="Settled, awaiting payout; negative when settlements carry a deficit."
    )
    reserve: list[Amount] = Field(description="Held back as a reserve.")


class BalanceTransaction(ResponseModel):
    id: BalanceTransactionId
    object: Literal["balance_transaction"]
    type: str = Field(json_schema_extra=enum_of(BALANCE_TRANSACTION_TYPES))
    amount: int = Field(description="Signed: + into the merchant's balances, - out of them.")
    fee: int = Field(description="Always 0: fees are balance transactions of type `fee`.")
    net: int
    currency: Currency
    source: str | None = Field(description="The id of the object that moved the money.")
    status: Literal["pending", "available"] = Field(
        description="`available` once the settlement of its source has completed."
    )
    available_on: Timestamp = Field(
        description="When it became available; while pending, when it is expected to."
    )
    created: Timestamp


class SettlementRun(ResponseModel):
    id: RunId
    object: Literal["settlement_run"]
    business_date: BusinessDate
    cutoff: Timestamp
    status: Literal["running", "completed", "failed"]
    partitions: int = Field(ge=1)
    stats: dict[str, Any]
    error: str | None
    created: Timestamp
    completed: Timestamp | None


class FeeDetails(ResponseModel):
    interchange: int
    scheme_fees: int
    markup: int
    rounding: int
    disputes: int = Field(
        description="Dispute fees (charged when the disputes came; won ones given back)."
    )


class Settlement(ResponseModel):
    """One merchant's settlement of one currency for one business date."""

    id: SettlementId
    object: Literal["settlement"]
    merchant: MerchantId
    business_date: BusinessDate
    currency: Currency
    count: int = Field(ge=0)
    gross: int
    refunds: int
    disputes: int = Field(description="Disputed amounts taken, less those given back (won).")
    adjustments: int = Field(description="Signed: + credited to the merchant.")
    fees: int
    fee_details: FeeDetails
    reserve_held: int
    reserve_released: int
    net: int
    carried_in: int
    carried_forward: int
    repaid: int = Field(ge=0, description="Failed payouts' money paid again.")
    payout: int
    payout_id: PayoutId | None
    flagged_items: int = Field(ge=0, description="Items priced with a fallback rate.")
    run: RunId
    created: Timestamp


class SettlementItem(ResponseModel):
    """One settled capture, refund, dispute, dispute reversal or adjustment with its fee
    breakdown (what leaves the merchant is negative; a dispute's markup is its dispute fee)."""

    id: AnyId = Field(description="The id of the settled capture, refund, dispute, ...")
    object: Literal["settlement_item"]
    settlement: SettlementId
    merchant: MerchantId
    payment: PaymentId | None = Field(description="None for an adjustment.")
    reference: str | None
    type: str = Field(json_schema_extra=enum_of(ITEM_KINDS))
    brand: Brand | None
    currency: Currency
    gross: int
    interchange: int
    scheme_fee: int
    markup: int
    commission: int = Field(description="interchange + scheme_fee + markup = gross - net.")
    net: int
    flags: list[str]


class Payout(ResponseModel):
    id: PayoutId
    object: Literal["payout"]
    merchant: MerchantId
    amount: int
    currency: Currency
    status: str = Field(json_schema_extra=enum_of(PAYOUT_TRANSITIONS))
    arrival_date: Timestamp
    settlement: SettlementId
    flag: str | None
    failure_code: str | None = Field(description="Why it failed: the bank's return code (R01).")
    repaid_by: SettlementId | None = Field(
        description="For a failed payout: the settlement that paid its money again."
    )
    created: Timestamp


class BalanceTransactionList(ListOf[BalanceTransaction]):
    pass


class SettlementList(ListOf[Settlement]):
    pass


class SettlementItemList(ListOf[SettlementItem]):
    pass


class PayoutList(ListOf[Payout]):
    pass
