"""What a connector is sent and what it may answer; the response codes every connector maps to;
the test cards; the circuit breaker's state machine. No I/O.

A connector's answer is one of six statuses. Three come from the processor (approved, declined,
error), one from a status inquiry (not found), and two say the processor's answer is missing:
`UNREACHABLE` (the call never left: connection refused, breaker open, so the processor did not
act) and `UNKNOWN` (the call left and no usable answer came back: a timeout, a connection reset,
a malformed answer, so the processor may have acted). Only the last one needs a reversal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, assert_never

from clearport.core.errors import invariant
from clearport.core.sensitive import SensitiveStr


class ConnectorStatus(StrEnum):
    """What a connector may say about one operation."""

    APPROVED = "approved"
    DECLINED = "declined"
    ERROR = "error"  # processed and refused for a technical reason (DE39 96 ...)
    UNKNOWN = "unknown"  # sent, no usable answer (timeout, reset): the processor may have acted
    UNREACHABLE = "unreachable"  # never sent (connection refused, breaker open): it did not act
    NOT_FOUND = "not_found"  # status query: the processor has no record of our reference


class Failure(StrEnum):
    """Why a call has no answer from the processor, or a technical one: the decline code of the
    attempt and of `routing.failover` (API.md)."""

    PROCESSING_ERROR = "processing_error"  # DE39 96, a malformed answer, a reset connection
    TIMEOUT = "timeout"
    CONNECTION_REFUSED = "connection_refused"
    BREAKER_OPEN = "breaker_open"


@dataclass(frozen=True, slots=True)
class ConnectorResult:
    status: ConnectorStatus
    response_code: str | None = None  # ISO 8583 DE39
    auth_code: str | None = None
    network_reference: str | None = None
    decline_code: str | None = None
    connector_reference: str | None = None
    # For status queries: which operation the processor has on record.
    operation: str | None = None

    def as_log(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "response_code": self.response_code,
            "auth_code": self.auth_code,
            "network_reference": self.network_reference,
            "decline_code": self.decline_code,
        }

    @property
    def is_technical_failure(self) -> bool:
        """A failure of the connection or the processor, never the issuer's decision: what
        fails over to the next candidate and what a circuit breaker counts."""
        match self.status:
            case ConnectorStatus.ERROR | ConnectorStatus.UNKNOWN | ConnectorStatus.UNREACHABLE:
                return True
            case ConnectorStatus.APPROVED | ConnectorStatus.DECLINED | ConnectorStatus.NOT_FOUND:
                return False
            case _:
                assert_never(self.status)


def unknown(failure: Failure) -> ConnectorResult:
    """The call left and no usable answer came back: the processor may have acted."""
    return ConnectorResult(status=ConnectorStatus.UNKNOWN, decline_code=str(failure))


def unreachable(failure: Failure) -> ConnectorResult:
    """The call never reached the processor."""
    return ConnectorResult(status=ConnectorStatus.UNREACHABLE, decline_code=str(failure))


@dataclass(frozen=True, slots=True)
class ConnectorCard:
    """What a connector needs to authorize: plaintext only behind `SensitiveStr`. The CVC lives
    here for the one authorization and is never persisted."""

    number: SensitiveStr
    exp_month: int
    exp_year: int
    cvc: SensitiveStr | None = None


# --- response codes ----------------------------------------------------------------------------


class ResponseCode(StrEnum):
    """ISO 8583:1987 DE39 codes the connectors understand. The HTTP acquirer speaks the same
    two-character codes in its `reason_code`, as many acquirer APIs do."""

    APPROVED = "00"
    REFER_TO_ISSUER = "01"
    INVALID_MERCHANT = "03"
    PICK_UP = "04"
    DO_NOT_HONOR = "05"
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    INVALID_CARD_NUMBER = "14"
    NO_SUCH_ISSUER = "15"
    LOST_CARD = "41"
    STOLEN_CARD = "43"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED_CARD = "54"
    NOT_PERMITTED_TO_CARDHOLDER = "57"
    NOT_PERMITTED_TO_TERMINAL = "58"
    EXCEEDS_AMOUNT_LIMIT = "61"
    EXCEEDS_FREQUENCY_LIMIT = "65"
    INCORRECT_CVC = "82"
    ISSUER_UNAVAILABLE = "91"
    DUPLICATE_TRANSMISSION = "94"
    SYSTEM_MALFUNCTION = "96"


def parse_response_code(value: object) -> ResponseCode | None:
    """The code, or None for anything else (a code this table does not know is not trusted)."""
    if not isinstance(value, str):
        return None
    try:
        return ResponseCode(value)
    except ValueError:
        return None


def meaning(code: ResponseCode) -> tuple[ConnectorStatus, str | None]:
    """What a processor's response code means to us: its status and our decline code."""
    match code:
        case ResponseCode.APPROVED:
            return ConnectorStatus.APPROVED, None
        case ResponseCode.DO_NOT_HONOR | ResponseCode.REFER_TO_ISSUER:
            return ConnectorStatus.DECLINED, "do_not_honor"
        case ResponseCode.INVALID_MERCHANT | ResponseCode.NOT_PERMITTED_TO_TERMINAL:
            return ConnectorStatus.DECLINED, "transaction_not_allowed"
        case ResponseCode.PICK_UP:
            return ConnectorStatus.DECLINED, "pickup_card"
        case ResponseCode.INVALID_TRANSACTION | ResponseCode.NOT_PERMITTED_TO_CARDHOLDER:
            return ConnectorStatus.DECLINED, "transaction_not_allowed"
        case ResponseCode.INVALID_AMOUNT:
            return ConnectorStatus.DECLINED, "invalid_amount"
        case ResponseCode.INVALID_CARD_NUMBER | ResponseCode.NO_SUCH_ISSUER:
            return ConnectorStatus.DECLINED, "invalid_number"
        case ResponseCode.LOST_CARD:
            return ConnectorStatus.DECLINED, "lost_card"
        case ResponseCode.STOLEN_CARD:
            return ConnectorStatus.DECLINED, "stolen_card"
        case ResponseCode.INSUFFICIENT_FUNDS:
            return ConnectorStatus.DECLINED, "insufficient_funds"
        case ResponseCode.EXPIRED_CARD:
            return ConnectorStatus.DECLINED, "expired_card"
        case ResponseCode.EXCEEDS_AMOUNT_LIMIT | ResponseCode.EXCEEDS_FREQUENCY_LIMIT:
            return ConnectorStatus.DECLINED, "card_velocity_exceeded"
        case ResponseCode.INCORRECT_CVC:
            return ConnectorStatus.DECLINED, "incorrect_cvc"
        case (
            ResponseCode.ISSUER_UNAVAILABLE
            | ResponseCode.DUPLICATE_TRANSMISSION
            | ResponseCode.SYSTEM_MALFUNCTION
        ):
            return ConnectorStatus.ERROR, str(Failure.PROCESSING_ERROR)
        case _:
            assert_never(code)


def result_for(
    code: ResponseCode,
    *,
    auth_code: str | None = None,
    network_reference: str | None = None,
    reference: str | None = None,
    operation: str | None = None,
) -> ConnectorResult:
    """A processor's answer, as ours."""
    status, decline_code = meaning(code)
    return ConnectorResult(
        status=status,
        response_code=str(code),
        auth_code=auth_code if status is ConnectorStatus.APPROVED else None,
        network_reference=network_reference,
        decline_code=decline_code,
        connector_reference=reference,
        operation=operation,
    )


# API.md's test cards: every simulator (in-process, HTTP, ISO 8583) answers them the same way.
TEST_CARDS: dict[str, ResponseCode] = {
    "4000000000000002": ResponseCode.DO_NOT_HONOR,
    "4000000000009995": ResponseCode.INSUFFICIENT_FUNDS,
    "4000000000000069": ResponseCode.EXPIRED_CARD,
    "4000000000000127": ResponseCode.INCORRECT_CVC,
    "4000000000000119": ResponseCode.SYSTEM_MALFUNCTION,
}


def test_card_code(number: str) -> ResponseCode:
    """What the simulators answer an authorization of `number`."""
    return TEST_CARDS.get(number, ResponseCode.APPROVED)


# --- the circuit breaker -----------------------------------------------------------------------


class BreakerState(StrEnum):
    CLOSED = "closed"  # calls flow; consecutive technical failures are counted
    OPEN = "open"  # calls are refused at once until the cool-down has passed
    HALF_OPEN = "half_open"  # one trial call at a time decides: closed again, or open again


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int  # consecutive technical failures that open the breaker
    cooldown_s: float  # how long it stays open before a trial call

    def __post_init__(self) -> None:
        invariant(self.failure_threshold >= 1, "a breaker opens after at least one failure")
        invariant(self.cooldown_s >= 0, "a breaker's cool-down is not negative")


class CircuitBreaker:
    """Closed, open, half-open on technical failures and timeouts (never on declines). Time is
    passed in (a monotonic clock's seconds), so the machine is deterministic."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self.policy = policy
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_out = False

    def state(self, now: float) -> BreakerState:
        """The state as a caller would meet it now (open past its cool-down reads half-open)."""
        if self._state is BreakerState.OPEN and now - self._opened_at >= self.policy.cooldown_s:
            return BreakerState.HALF_OPEN
        return self._state

    def allow(self, now: float) -> bool:
        """Whether a call may go out now; a half-open breaker lets one trial call at a time."""
        match self.state(now):
            case BreakerState.CLOSED:
                return True
            case BreakerState.OPEN:
                return False
            case BreakerState.HALF_OPEN:
                if self._trial_out:
                    return False
                self._state = BreakerState.HALF_OPEN
                self._trial_out = True
                return True
            case _ as unreachable_state:
                assert_never(unreachable_state)

    def record(self, *, failed: bool, now: float) -> None:
        """The outcome of a call `allow` let out."""
        trial = self._state is BreakerState.HALF_OPEN
        self._trial_out = False
        if not failed:
            self._state, self._failures = BreakerState.CLOSED, 0
            return
        self._failures += 1
        if trial or self._failures >= self.policy.failure_threshold:
            self._state, self._opened_at = BreakerState.OPEN, now

    def abandon(self) -> None:
        """A call `allow` let out ended without an outcome (its caller was cancelled): a trial
        slot is freed for the next caller."""
        self._trial_out = False
