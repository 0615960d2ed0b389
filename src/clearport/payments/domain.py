"""The payment and refund state machines, and what a connector's answer means for them: the
records (`Payment`, `Refund`; `Attempt` in `payments.attempts`) and the changes an answer makes
to them. What a change writes elsewhere (txlog entry, event, ledger transfer) is built in
`payments.records`.

Every legal transition is listed in `_PAYMENT_TRANSITIONS`; anything else raises `InvalidState`
naming the current status. Connector answers are mapped by an exhaustive `match` ending in
`assert_never`, so a new connector status is a type error, not a production surprise.

    pending ──approved──> authorized ──capture──> captured ──refund (all)──> refunded
       │                     │   │                    │
       ├─declined─> declined │   └─expire─> expired    └─refund (part): stays captured
       └─error────> failed   └─void──> voided

A pending authorization may move from one connector to the next (failover, `Routing`) before
its outcome is known: the payment stays pending, each connector's call is an attempt of its
own, and one whose answer never came is reversed (an attempt of operation `reverse`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, assert_never

from clearport.connectors.domain import ConnectorResult, ConnectorStatus, Failure
from clearport.core.errors import Field, InternalError, InvalidRequest, InvalidState, invariant
from clearport.core.money import MAX_AMOUNT_MINOR


class PaymentStatus(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    REFUNDED = "refunded"
    VOIDED = "voided"
    EXPIRED = "expired"
    DECLINED = "declined"
    FAILED = "failed"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Operation(StrEnum):
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"
    EXPIRE = "expire"
    REVERSE = "reverse"  # cancel what another attempt may have done at the processor


class AttemptStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    FAILED = "failed"


P = PaymentStatus

_PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    P.PENDING: frozenset({P.AUTHORIZED, P.CAPTURED, P.DECLINED, P.FAILED}),
    P.AUTHORIZED: frozenset({P.CAPTURED, P.VOIDED, P.EXPIRED}),
    P.CAPTURED: frozenset({P.REFUNDED}),
    P.REFUNDED: frozenset(),
    P.VOIDED: frozenset(),
    P.EXPIRED: frozenset(),
    P.DECLINED: frozenset(),
    P.FAILED: frozenset(),
}

_REFUND_TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.PENDING: frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED}),
    RefundStatus.SUCCEEDED: frozenset(),
    RefundStatus.FAILED: frozenset(),
}


def can_transition(current: PaymentStatus, target: PaymentStatus) -> bool:
    return target in _PAYMENT_TRANSITIONS[current]


def check_transition(current: PaymentStatus, target: PaymentStatus) -> None:
    if not can_transition(current, target):
        raise InvalidState(f"This payment's status is '{current}'; it cannot become '{target}'.")


def check_refund_transition(current: RefundStatus, target: RefundStatus) -> None:
    if target not in _REFUND_TRANSITIONS[current]:
        raise InvalidState(f"This refund's status is '{current}'; it cannot become '{target}'.")


def require_status(current: PaymentStatus, action: str, allowed: PaymentStatus) -> None:
    """Reject an operation with 409 `invalid_state`, naming the status."""
    if current is not allowed:
        raise InvalidState(
            f"This payment's status is '{current}'; it can be {action} only when '{allowed}'."
        )


def validate_amount(
    amount: int,
    currency: str,
    *,
    max_amount_minor: Mapping[str, int],
    field: Field | str = "amount",
) -> int:
    """A positive amount within the cap of its currency (a cap is per currency: one number of
    minor units would mean a different sum of money in each)."""
    if type(amount) is not int or amount <= 0:
        raise InvalidRequest("'{field}' must be a positive integer in minor units.", field=field)
    cap = min(max_amount_minor.get(currency, MAX_AMOUNT_MINOR), MAX_AMOUNT_MINOR)
    if amount > cap:
        raise InvalidRequest(
            f"'{{field}}' exceeds the maximum of {cap} minor units of {currency}.",
            code="amount_too_large",
            field=field,
        )
    return amount


def capture_amount(requested: int | None, authorized: int) -> int:
    """Capture once, at most the authorized amount; the rest is released."""
    if requested is None:
        return authorized
    if type(requested) is not int or requested <= 0:
        raise InvalidRequest("'amount' must be a positive integer in minor units.", field="amount")
    if requested > authorized:
        raise InvalidRequest(
            f"'amount' exceeds the authorized amount ({authorized}).",
            code="amount_too_large",
            field="amount",
        )
    return requested


def refund_amount(requested: int | None, captured: int, refunded: int) -> int:
    remaining = captured - refunded
    invariant(remaining >= 0, "refunded exceeds captured")
    if requested is None:
        if remaining == 0:
            raise InvalidState("This payment has nothing left to refund.")
        return remaining
    if type(requested) is not int or requested <= 0:
        raise InvalidRequest("'amount' must be a positive integer in minor units.", field="amount")
    if requested > remaining:
        raise InvalidRequest(
            f"'amount' exceeds what is left to refund ({remaining}).",
            code="amount_too_large",
            field="amount",
        )
    return requested


class Outcome(StrEnum):
    """Our reading of a connector answer."""

    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    FAILED = "failed"
    UNKNOWN = "unknown"


def outcome_of(result: ConnectorResult) -> Outcome:
    match result.status:
        case ConnectorStatus.APPROVED:
            return Outcome.SUCCEEDED
        case ConnectorStatus.DECLINED:
            return Outcome.DECLINED
        case ConnectorStatus.ERROR | ConnectorStatus.NOT_FOUND | ConnectorStatus.UNREACHABLE:
            return Outcome.FAILED
        case ConnectorStatus.UNKNOWN:
            return Outcome.UNKNOWN
        case _:
            assert_never(result.status)


def authorization_target(outcome: Outcome, *, capture: bool) -> PaymentStatus:
    """The status a pending payment takes after its authorization's outcome."""
    match outcome:
        case Outcome.SUCCEEDED:
            return PaymentStatus.CAPTURED if capture else PaymentStatus.AUTHORIZED
        case Outcome.DECLINED:
            return PaymentStatus.DECLINED
        case Outcome.FAILED:
            return PaymentStatus.FAILED
        case Outcome.UNKNOWN:
            return PaymentStatus.PENDING
        case _:
            assert_never(outcome)


def attempt_status(outcome: Outcome) -> AttemptStatus:
    match outcome:
        case Outcome.SUCCEEDED:
            return AttemptStatus.SUCCEEDED
        case Outcome.DECLINED:
            return AttemptStatus.DECLINED
        case Outcome.FAILED:
            return AttemptStatus.FAILED
        case Outcome.UNKNOWN:
            return AttemptStatus.PENDING
        case _:
            assert_never(outcome)


@dataclass(frozen=True, slots=True)
class Routing:
    """Why a payment went to its connector (API.md `routing`): never a black box. The rule set
    and its version are None when no routing rule set was active (the connectors' default)."""

    chosen: str
    rule: str
    candidates: tuple[str, ...]
    reason: str
    failover: tuple[tuple[str, str], ...] = ()  # (connector, decline code), in order
    rule_set: str | None = None
    version: int | None = None

    @property
    def connector(self) -> str:
        return self.chosen

    def as_json(self) -> dict[str, Any]:
        return {
            "rule_set": self.rule_set,
            "version": self.version,
            "rule": self.rule,
            "candidates": list(self.candidates),
            "chosen": self.chosen,
            "reason": self.reason,
            "failover": [
                {"connector": connector, "decline_code": code} for connector, code in self.failover
            ],
        }


def route(
    candidates: tuple[str, ...],
    rule: str,
    reason: str,
    allows: Callable[[str], bool],
    *,
    rule_set: str | None = None,
    version: int | None = None,
) -> Routing:
    """The first candidate whose circuit breaker lets calls out; those skipped before it are
    listed as failed over (`breaker_open`). With every breaker open, the first candidate: its
    call is refused at once and the payment fails."""
    invariant(len(candidates) > 0, "routing needs a candidate")
    skipped: list[tuple[str, str]] = []
    for name in candidates:
        if allows(name):
            return Routing(name, rule, candidates, reason, tuple(skipped), rule_set, version)
        skipped.append((name, str(Failure.BREAKER_OPEN)))
    return Routing(candidates[0], rule, candidates, reason, (), rule_set, version)


def next_candidate(
    routing: dict[str, Any], failed: str, code: str, allows: Callable[[str], bool]
) -> tuple[str | None, dict[str, Any]]:
    """After `failed` failed for a technical reason (`code`): the next candidate whose breaker
    lets calls out and the routing that records the failover (those skipped for an open breaker
    included); or None and the routing unchanged, when no candidate is left."""
    candidates: list[str] = list(routing.get("candidates", []))
    failover = [*routing.get("failover", []), {"connector": failed, "decline_code": code}]
    tried = {entry["connector"] for entry in failover}
    after = candidates[candidates.index(failed) + 1 :] if failed in candidates else []
    for name in after:
        if name in tried:
            continue
        if allows(name):
            return name, {**routing, "chosen": name, "failover": failover}
        failover.append({"connector": name, "decline_code": str(Failure.BREAKER_OPEN)})
    return None, routing  # the last one tried stays `chosen`; its failure is the payment's


@dataclass(slots=True)
class Payment:
    id: str
    merchant_id: str
    amount: int
    currency: str
    status: PaymentStatus
    capture_requested: bool
    card_brand: str
    card_bin: str
    card_last4: str
    card_exp_month: int
    card_exp_year: int
    card_fingerprint: str
    token_id: str
    auth_attempt_id: str
    connector: str
    routing: dict[str, Any]
    reference: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    amount_captured: int = 0
    amount_refunded: int = 0
    amount_refund_pending: int = 0
    # What chargebacks took and did not give back (open or lost disputes): like a refund, it is
    # no longer the merchant's to refund or to have disputed again.
    amount_disputed: int = 0
    pending_operation: str | None = None
    auth_code: str | None = None
    network_reference: str | None = None
    decline_code: str | None = None
    authorized_at: datetime | None = None
    captured_at: datetime | None = None
    # From the BIN table when the card was tokenized (None: not listed).
    card_funding: str | None = None
    card_category: str | None = None
    card_issuer_country: str | None = None
    # The risk decision (`risk.domain.RiskDecision.as_json`); None: no risk rule set was active.
    risk: dict[str, Any] | None = None

    def check(self) -> None:
        invariant(0 <= self.amount_captured <= self.amount, "amount_captured out of range")
        invariant(
            0
            <= self.amount_refunded + self.amount_refund_pending + self.amount_disputed
            <= self.amount_captured,
            "refunds and disputes exceed the captured amount",
        )

    @property
    def disputable_minor(self) -> int:
        """What a chargeback may still take: captured, less refunds (done or under way) and
        what earlier chargebacks took."""
        return (
            self.amount_captured
            - self.amount_refunded
            - self.amount_refund_pending
            - self.amount_disputed
        )

    def record_dispute(self, taken_minor: int, at: datetime) -> None:
        """A chargeback took `taken_minor` (negative: a won dispute gave it back)."""
        self.amount_disputed += taken_minor
        self.updated_at = at
        self.check()

    def move_to(self, target: PaymentStatus, at: datetime) -> PaymentStatus:
        """Apply a legal transition; return the previous status."""
        check_transition(self.status, target)
        previous = self.status
        self.status = target
        self.updated_at = at
        return previous

    def start_operation(self, operation: Operation, at: datetime) -> None:
        """Mark a capture, void or expiry as out at the connector: a second one is refused
        until its answer is written (`finish_operation`)."""
        if self.pending_operation is not None:
            raise InvalidState(
                f"A {self.pending_operation} of this payment is in progress; "
                "retry when it has finished."
            )
        self.pending_operation = str(operation)
        self.updated_at = at

    def finish_operation(
        self, operation: Operation, amount: int, outcome: Outcome, at: datetime
    ) -> PaymentStatus | None:
        """Apply a capture, void or expiry's answer; the previous status if it moved."""
        self.pending_operation = None
        self.updated_at = at
        if outcome is not Outcome.SUCCEEDED:
            return None
        match operation:
            case Operation.CAPTURE:
                previous = self.move_to(PaymentStatus.CAPTURED, at)
                self.amount_captured = amount
                self.captured_at = at
            case Operation.VOID:
                previous = self.move_to(PaymentStatus.VOIDED, at)
            case Operation.EXPIRE:
                previous = self.move_to(PaymentStatus.EXPIRED, at)
            case Operation.AUTHORIZE | Operation.REFUND | Operation.REVERSE:
                raise InternalError(f"not a payment operation: {operation}")
            case _:
                assert_never(operation)
        self.check()
        return previous

    def reserve_refund(self, amount: int, at: datetime) -> None:
        """Count a refund sent to the connector against what is left to refund."""
        self.amount_refund_pending += amount
        self.updated_at = at
        self.check()


def after_authorization(
    payment: Payment, outcome: Outcome, result: ConnectorResult, at: datetime
) -> Payment:
    """A pending payment as its authorization's known outcome leaves it (a copy)."""
    updated = replace(payment)
    updated.move_to(authorization_target(outcome, capture=updated.capture_requested), at)
    updated.auth_code = result.auth_code
    updated.network_reference = result.network_reference
    # A technical failure shows as `processing_error` whatever its kind (timeout, refused
    # connection ...): the attempts and `routing.failover` keep the kind.
    updated.decline_code = (
        str(Failure.PROCESSING_ERROR) if outcome is Outcome.FAILED else result.decline_code
    )
    if outcome is Outcome.SUCCEEDED:
        updated.authorized_at = at
    if updated.status is PaymentStatus.CAPTURED:
        updated.amount_captured = updated.amount
        updated.captured_at = at
    updated.check()
    return updated


@dataclass(slots=True)
class Refund:
    id: str
    payment_id: str
    merchant_id: str
    amount: int
    currency: str
    status: RefundStatus
    reason: str | None
    attempt_id: str
    created_at: datetime
    updated_at: datetime

    def move_to(self, target: RefundStatus, at: datetime) -> RefundStatus:
        """Apply a legal transition; return the previous status."""
        check_refund_transition(self.status, target)
        previous = self.status
        self.status = target
        self.updated_at = at
        return previous


class RefundSettled(NamedTuple):
    """What a refund's answer changed: the statuses before, the payment's if it moved."""

    refund_was: RefundStatus
    payment_was: PaymentStatus | None


def settle_refund(
    payment: Payment, refund: Refund, outcome: Outcome, at: datetime
) -> RefundSettled:
    """Apply a refund's known outcome to the refund and its payment: a refund that succeeded
    counts as refunded, and the payment becomes `refunded` when nothing is left."""
    succeeded = outcome is Outcome.SUCCEEDED
    refund_was = refund.move_to(RefundStatus.SUCCEEDED if succeeded else RefundStatus.FAILED, at)
    payment.amount_refund_pending -= refund.amount
    payment.updated_at = at
    payment_was = None
    if succeeded:
        payment.amount_refunded += refund.amount
        if payment.amount_refunded == payment.amount_captured:
            payment_was = payment.move_to(PaymentStatus.REFUNDED, at)
    payment.check()
    return RefundSettled(refund_was, payment_was)
