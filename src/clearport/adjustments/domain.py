"""An adjustment: finance credits (positive) or debits (negative) a merchant's balance, with a
reason, against the platform's adjustments account. It goes into the merchant's pending account
and is settled like any item (its own type in the settlement and its reports). No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from clearport.core.errors import InvalidRequest
from clearport.core.redaction import contains_card_number
from clearport.ledger.domain import PLATFORM, AccountKind, AccountRef, TransferRequest
from clearport.txlog.domain import TxlogEntry

MAX_REASON_LEN = 500


@dataclass(frozen=True, slots=True)
class Adjustment:
    id: str  # adj_...
    merchant_id: str
    amount: int  # signed minor units: + credits the merchant
    currency: str
    reason: str
    balance_transaction: str  # txn_... of its ledger transfer
    created_by: str
    created_at: datetime


def check_reason(reason: str) -> str:
    """A reason a person wrote: not blank, at most MAX_REASON_LEN characters."""
    if not reason.strip():
        raise InvalidRequest("'{field}' must say why the balance is adjusted.", field="reason")
    if len(reason) > MAX_REASON_LEN:
        raise InvalidRequest(
            f"'{{field}}' is longer than {MAX_REASON_LEN} characters.", field="reason"
        )
    if contains_card_number(reason):
        raise InvalidRequest("'{field}' must not contain a card number.", field="reason")
    return reason


def adjustment_transfer(
    adjustment_id: str, merchant_id: str, amount: int, currency: str
) -> TransferRequest:
    """The merchant's pending account against the platform's adjustments account."""
    pending = AccountRef(merchant_id, AccountKind.PENDING, currency)
    platform = AccountRef(PLATFORM, AccountKind.ADJUSTMENTS, currency)
    return TransferRequest(
        id=f"{adjustment_id}:adjustment",
        debit=platform if amount > 0 else pending,
        credit=pending if amount > 0 else platform,
        amount_minor=abs(amount),
        currency=currency,
        code="adjustment",
        source=adjustment_id,
    )


def txlog_entry(adjustment: Adjustment, actor: str) -> TxlogEntry:
    return TxlogEntry(
        object_type="adjustment",
        object_id=adjustment.id,
        payment_id=None,
        merchant_id=adjustment.merchant_id,
        from_status=None,
        to_status="posted",
        amount=adjustment.amount,
        currency=adjustment.currency,
        actor=actor,
        connector_result=None,
        occurred_at=adjustment.created_at,
    )
