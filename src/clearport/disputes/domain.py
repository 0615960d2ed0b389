"""Disputes: the lifecycle, the evidence, and what each step moves in the ledger. No I/O.

    chargeback: needs_response ──submit──> under_review ──close──> won | lost
                      └─────────────────close─────────────────────┘
    inquiry:    warning_needs_response ──submit──> warning_under_review ──close──> warning_closed
                      └──────────────────────close────────────────────────┘

An inquiry (`warning_*`, a retrieval request) moves no money. A chargeback takes the disputed
amount and the dispute fee from the merchant when it is created: from its available balance
first (what no pending payout will take: failed payouts' money), the rest from pending, which
may go negative and is then carried by its settlement like a negative net. A won chargeback gives
both back into pending (a source of its own, `dpr_…`), and settles like any item; a lost one
moves nothing more: the money is gone. See decision 0700.

Ledger transfers (ids `<source>:<leg>`, the source `dp_…` or, won, `dpr_…`; code chargeback
for the amount, fee for the fee):

    created  available -> processor_receivable  amount, what available pays  :chargeback:available
             pending   -> processor_receivable  amount, the rest             :chargeback
             available -> fee_revenue           fee, what available pays     :fee:available
             pending   -> fee_revenue           fee, the rest                :fee
    won      processor_receivable -> pending    amount                       (dpr_…):chargeback
             fee_revenue -> pending             fee                          (dpr_…):fee

Available pays the fee first, then the amount, so whenever pending pays any of it, pending pays
(a part of) the amount: a dispute's settlement item is never without its chargeback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from clearport.core.errors import InvalidRequest, InvalidState
from clearport.core.ids import new_id
from clearport.core.redaction import contains_card_number
from clearport.ledger.domain import PLATFORM, AccountKind, AccountRef, TransferRequest
from clearport.txlog.domain import TxlogEntry


class DisputeStatus(StrEnum):
    NEEDS_RESPONSE = "needs_response"
    UNDER_REVIEW = "under_review"
    WON = "won"
    LOST = "lost"
    WARNING_NEEDS_RESPONSE = "warning_needs_response"
    WARNING_UNDER_REVIEW = "warning_under_review"
    WARNING_CLOSED = "warning_closed"


S = DisputeStatus
OPEN = frozenset(
    {S.NEEDS_RESPONSE, S.UNDER_REVIEW, S.WARNING_NEEDS_RESPONSE, S.WARNING_UNDER_REVIEW}
)
AWAITING_EVIDENCE = frozenset({S.NEEDS_RESPONSE, S.WARNING_NEEDS_RESPONSE})
_SUBMITTED = {S.NEEDS_RESPONSE: S.UNDER_REVIEW, S.WARNING_NEEDS_RESPONSE: S.WARNING_UNDER_REVIEW}


class DisputeReason(StrEnum):
    """Why the cardholder disputes (the networks' reason codes, grouped as Stripe does)."""

    BANK_CANNOT_PROCESS = "bank_cannot_process"
    CREDIT_NOT_PROCESSED = "credit_not_processed"
    CUSTOMER_INITIATED = "customer_initiated"
    DEBIT_NOT_AUTHORIZED = "debit_not_authorized"
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    GENERAL = "general"
    INCORRECT_ACCOUNT_DETAILS = "incorrect_account_details"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    PRODUCT_NOT_RECEIVED = "product_not_received"
    PRODUCT_UNACCEPTABLE = "product_unacceptable"
    SUBSCRIPTION_CANCELED = "subscription_canceled"
    UNRECOGNIZED = "unrecognized"


class Outcome(StrEnum):
    WON = "won"
    LOST = "lost"


# Evidence: text fields, and file fields that name an uploaded file (`file_…`, purpose
# dispute_evidence).
EVIDENCE_TEXT_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_tracking_number",
    "uncategorized_text",
)
EVIDENCE_FILE_FIELDS = (
    "cancellation_policy",
    "customer_communication",
    "customer_signature",
    "duplicate_charge_documentation",
    "receipt",
    "refund_policy",
    "service_documentation",
    "shipping_documentation",
    "uncategorized_file",
)
MAX_EVIDENCE_TEXT = 20_000  # characters per text field
# How long a merchant has to answer when the network gives no date; the longest it may be given.
DEFAULT_EVIDENCE_DAYS = 7
MAX_EVIDENCE_DAYS = 120


@dataclass(slots=True)
class Dispute:
    id: str
    merchant_id: str
    payment_id: str
    connector: str
    inquiry: bool
    amount: int
    fee: int
    currency: str
    status: DisputeStatus
    reason: DisputeReason
    network_reason_code: str | None
    network_case_id: str | None
    evidence_due_by: datetime
    created_by: str
    created_at: datetime
    updated_at: datetime
    evidence: dict[str, str] = field(default_factory=dict)
    evidence_submitted_at: datetime | None = None
    submission_count: int = 0
    from_available: int = 0  # of amount + fee, what the available balance paid
    reversal_id: str | None = None
    closed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def past_due(self, now: datetime) -> bool:
        return now >= self.evidence_due_by

    def take_evidence(self, evidence: dict[str, str], now: datetime) -> None:
        """Merge evidence in (a field given replaces the one there), while evidence is due."""
        if self.status not in AWAITING_EVIDENCE:
            raise InvalidState(
                f"This dispute is '{self.status}': its evidence was submitted already."
            )
        if self.past_due(now):
            raise InvalidState(
                "The evidence for this dispute was due by "
                f"{self.evidence_due_by.isoformat()}; it can no longer be given.",
                code="evidence_past_due",
            )
        for name, text in evidence.items():
            if contains_card_number(text):
                # Evidence is stored, sent in events and webhooks: never a card number.
                raise InvalidRequest(
                    "'{field}' must not contain a card number.", field=("evidence", name)
                )
        self.evidence = {**self.evidence, **evidence}
        self.updated_at = now

    def submit(self, now: datetime) -> DisputeStatus:
        """Send the evidence to the network: the dispute is under review. The previous status."""
        previous = self.status
        target = _SUBMITTED.get(previous)
        if target is None:
            raise InvalidState(f"This dispute is '{previous}': there is nothing to submit.")
        if self.past_due(now):
            raise InvalidState(
                "The evidence for this dispute was due by "
                f"{self.evidence_due_by.isoformat()}; it can no longer be submitted.",
                code="evidence_past_due",
            )
        if not self.evidence:
            raise InvalidState("This dispute has no evidence to submit: give 'evidence' first.")
        self.status = target
        self.evidence_submitted_at = now
        self.submission_count += 1
        self.updated_at = now
        return previous

    def close(self, outcome: Outcome, now: datetime) -> DisputeStatus:
        """The network's decision. An inquiry closes whatever the outcome (warning_closed)."""
        previous = self.status
        if not self.is_open:
            raise InvalidState(f"This dispute is '{previous}' already.")
        if self.inquiry:
            self.status = S.WARNING_CLOSED
        else:
            self.status = S.WON if outcome is Outcome.WON else S.LOST
        if self.status is S.WON:
            self.reversal_id = new_id("dpr")
        self.closed_at = now
        self.updated_at = now
        return previous


def check_disputable(amount: int, disputable: int) -> None:
    """A chargeback takes at most what the payment has left: captured - refunded - disputed."""
    if amount > disputable:
        raise InvalidRequest(
            f"'amount' exceeds what the payment has left to dispute ({disputable}).",
            code="amount_too_large",
            field="amount",
        )


def evidence_due_by(requested: datetime | None, now: datetime) -> datetime:
    if requested is None:
        return now + timedelta(days=DEFAULT_EVIDENCE_DAYS)
    if requested <= now or requested > now + timedelta(days=MAX_EVIDENCE_DAYS):
        raise InvalidRequest(
            f"'{{field}}' must be in the future, within {MAX_EVIDENCE_DAYS} days.",
            field="evidence_due_by",
        )
    return requested


class DebitSplit(NamedTuple):
    """What of a chargeback's amount and fee available pays, and what pending pays."""

    amount_from_available: int
    amount_from_pending: int
    fee_from_available: int
    fee_from_pending: int


def split_debit(amount: int, fee: int, free_available: int) -> DebitSplit:
    """Available first (the fee, then the amount), the rest from pending."""
    covered = max(0, min(free_available, amount + fee))
    fee_available = min(fee, covered)
    amount_available = covered - fee_available
    return DebitSplit(
        amount_available, amount - amount_available, fee_available, fee - fee_available
    )


def _transfer(
    source: str, key: str, code: str, debit: AccountRef, credit: AccountRef, amount: int
) -> list[TransferRequest]:
    if amount == 0:
        return []
    return [
        TransferRequest(
            id=f"{source}:{key}",
            debit=debit,
            credit=credit,
            amount_minor=amount,
            currency=debit.currency,
            code=code,
            source=source,
        )
    ]


def debit_transfers(dispute: Dispute, split: DebitSplit) -> list[TransferRequest]:
    """A chargeback's debit of the merchant, as the module docstring draws it."""
    m, c = dispute.merchant_id, dispute.currency
    available = AccountRef(m, AccountKind.AVAILABLE, c)
    pending = AccountRef(m, AccountKind.PENDING, c)
    receivable = AccountRef(PLATFORM, AccountKind.PROCESSOR_RECEIVABLE, c)
    fees = AccountRef(PLATFORM, AccountKind.FEE_REVENUE, c)
    d = dispute.id
    return [
        *_transfer(d, "chargeback:available", "chargeback", available, receivable,
                   split.amount_from_available),
        *_transfer(d, "chargeback", "chargeback", pending, receivable, split.amount_from_pending),
        *_transfer(d, "fee:available", "fee", available, fees, split.fee_from_available),
        *_transfer(d, "fee", "fee", pending, fees, split.fee_from_pending),
    ]  # fmt: skip


def reversal_transfers(dispute: Dispute) -> list[TransferRequest]:
    """A won chargeback's amount and fee back to the merchant's pending account."""
    if dispute.reversal_id is None:
        raise InvalidState("Only a won dispute is reversed.")
    m, c = dispute.merchant_id, dispute.currency
    pending = AccountRef(m, AccountKind.PENDING, c)
    receivable = AccountRef(PLATFORM, AccountKind.PROCESSOR_RECEIVABLE, c)
    fees = AccountRef(PLATFORM, AccountKind.FEE_REVENUE, c)
    r = dispute.reversal_id
    return [
        *_transfer(r, "chargeback", "chargeback", receivable, pending, dispute.amount),
        *_transfer(r, "fee", "fee", fees, pending, dispute.fee),
    ]


def txlog_entry(
    dispute: Dispute, previous: DisputeStatus | None, actor: str, at: datetime
) -> TxlogEntry:
    """The dispute's change to its current status (from None: its creation)."""
    return TxlogEntry(
        object_type="dispute",
        object_id=dispute.id,
        payment_id=dispute.payment_id,
        merchant_id=dispute.merchant_id,
        from_status=None if previous is None else str(previous),
        to_status=str(dispute.status),
        amount=dispute.amount,
        currency=dispute.currency,
        actor=actor,
        connector_result=None,
        occurred_at=at,
    )
