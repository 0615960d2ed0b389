"""Reconciliation's rules and records: the kinds of exception, what each means for the merchant
and the platform, and the ledger transfers a resolution posts. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from clearport.core.errors import InvalidRequest, InvalidState
from clearport.core.redaction import contains_card_number
from clearport.ledger.domain import PLATFORM, AccountKind, AccountRef, TransferRequest


class ExceptionKind(StrEnum):
    MISSING_INTERNAL = "missing_internal"  # the processor settled what Clearport has no record of
    MISSING_EXTERNAL = "missing_external"  # Clearport recorded what the processor did not settle
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    FEE_DIFFERENCE = "fee_difference"  # fees other than the connector's agreed schedule
    DUPLICATE = "duplicate"  # settled more than once (in one file, or again in a later one)


class ExceptionStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    ACCEPT = "accept"  # the processor's figure stands; no money moves
    ADJUST = "adjust"  # the difference is posted to the merchant as an adjustment
    WRITE_OFF = "write_off"  # the platform absorbs the difference (reconciliation losses)
    MATCHED_LATE = "matched_late"  # a later file settled it (automatic)
    DISPUTE_CREATED = "dispute_created"  # the processor's chargeback became a dispute (automatic)


ACTIONS = (Resolution.ACCEPT, Resolution.ADJUST, Resolution.WRITE_OFF)
RUN_COUNTS = (
    "matched",
    "missing_internal",
    "missing_external",
    "amount_mismatch",
    "currency_mismatch",
    "fee_difference",
    "duplicate",
)
MAX_NOTE_LEN = 500


@dataclass(frozen=True, slots=True)
class ReconciliationRun:
    id: str  # rc_…
    connector: str
    connector_type: str
    file_id: str | None
    file_sha256: str
    period_start: date
    period_end: date  # exclusive
    lines: int
    rejected: int
    matched: int
    missing_internal: int
    missing_external: int
    amount_mismatch: int
    currency_mismatch: int
    fee_difference: int
    duplicate: int
    matched_late: int
    disputes_created: int
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RejectedLine:
    line_number: int
    reason: str


@dataclass(frozen=True, slots=True)
class ReconciliationException:
    id: str  # rcx_…
    run_id: str
    connector: str
    kind: ExceptionKind
    status: ExceptionStatus
    resolution: Resolution | None
    reference: str
    network_case_id: str | None
    line_number: int | None
    line_count: int
    item_type: str  # capture | refund | dispute
    item_id: str | None
    merchant_id: str | None
    currency: str
    internal_amount: int | None
    external_amount: int | None
    external_currency: str | None
    external_fee: int | None
    expected_fee: int | None
    difference: int | None
    settlement_date: date | None
    note: str | None
    adjustment_id: str | None
    balance_transaction: str | None
    resolved_by: str | None
    created_at: datetime
    resolved_at: datetime | None


def check_note(note: str) -> str:
    if not note.strip():
        raise InvalidRequest("'{field}' must say why the exception is resolved so.", field="note")
    if len(note) > MAX_NOTE_LEN:
        raise InvalidRequest(f"'{{field}}' is longer than {MAX_NOTE_LEN} characters.", field="note")
    if contains_card_number(note):
        raise InvalidRequest("'{field}' must not contain a card number.", field="note")
    return note


def check_resolvable(found: ReconciliationException, action: Resolution) -> None:
    """Whether `action` can close the exception: it is open, and money can move only for a
    known merchant and a difference in one currency."""
    if found.status is not ExceptionStatus.OPEN:
        raise InvalidState(
            f"Exception {found.id} is resolved already ({found.resolution}).",
            code="invalid_state",
        )
    if action is Resolution.ACCEPT:
        return
    if found.difference is None:
        raise InvalidState(
            f"A {found.kind} has no difference in one currency: it can only be accepted.",
            code="invalid_state",
        )
    if found.difference == 0:
        raise InvalidState(
            "The difference is zero: there is nothing to post; accept it.", code="invalid_state"
        )
    if action is Resolution.ADJUST and found.merchant_id is None:
        raise InvalidState(
            "No merchant is known for this exception: adjust needs one; accept or write it off.",
            code="invalid_state",
        )


def write_off_transfer(found: ReconciliationException) -> TransferRequest:
    """The platform absorbs the difference: the processor receivable it will never collect (or
    the surplus the processor paid) against the platform's reconciliation losses."""
    difference = found.difference
    if difference is None or difference == 0:  # pragma: no cover - check_resolvable refuses
        raise InvalidState("nothing to write off", code="invalid_state")
    receivable = AccountRef(PLATFORM, AccountKind.PROCESSOR_RECEIVABLE, found.currency)
    losses = AccountRef(PLATFORM, AccountKind.RECONCILIATION_LOSSES, found.currency)
    return TransferRequest(
        id=f"{found.id}:write_off",
        debit=losses if difference < 0 else receivable,
        credit=receivable if difference < 0 else losses,
        amount_minor=abs(difference),
        currency=found.currency,
        code="reconciliation_write_off",
        source=found.id,
    )


def adjustment_reason(found: ReconciliationException, note: str) -> str:
    return f"Reconciliation {found.kind} {found.reference} ({found.id}): {note}"[:MAX_NOTE_LEN]


def run_shown(run: ReconciliationRun) -> dict[str, Any]:
    """The run as the API, its event and the CLI show it (without its rejected rows)."""
    return {
        "id": run.id,
        "object": "reconciliation_run",
        "connector": run.connector,
        "connector_type": run.connector_type,
        "file": run.file_id,
        "sha256": run.file_sha256,
        "period_start": run.period_start.isoformat(),
        "period_end": run.period_end.isoformat(),
        "lines": run.lines,
        "rejected": run.rejected,
        **{name: getattr(run, name) for name in RUN_COUNTS},
        "matched_late": run.matched_late,
        "disputes_created": run.disputes_created,
        "created": int(run.created_at.timestamp()),
    }
