"""Webhook rules without I/O: endpoints and their subscriptions, signing secrets and the
`Clearport-Signature` header, the retry schedule, and the records the tables hold.

The signature is Stripe's scheme exactly, so their libraries verify it: HMAC-SHA256 keyed with
the whole secret (`whsec_…`) over `"<t>.<raw body>"`, hex, in `t=<unix seconds>,v1=<hex>`, one
`v1=` per secret still valid (two during a rotation's overlap).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from clearport.core.errors import InvalidRequest
from clearport.events.domain import Event, event_types_for
from clearport.vault.domain import PLATFORM_OWNER

SECRET_PREFIX = "whsec_"
_SECRET_RANDOM_BYTES = 32  # 256 bits
SIGNATURE_HEADER = "Clearport-Signature"
EVENT_ID_HEADER = "Clearport-Event-Id"
# Receivers should refuse a signature older than this (replay), as Stripe's libraries do.
SIGNATURE_TOLERANCE_S = 300
ALL_EVENTS = "*"
MAX_ENABLED_EVENTS = 64
MAX_DESCRIPTION_LENGTH = 500


class EndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # three days of retries ran out
    CANCELLED = "cancelled"  # its endpoint was disabled or deleted first


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: str
    merchant_id: str | None  # None: a platform endpoint (platform events)
    url: str
    description: str | None
    enabled_events: tuple[str, ...]
    status: EndpointStatus
    disabled_reason: str | None
    failing_since: datetime | None  # since the first delivery it failed was due; None: healthy
    created_at: datetime
    updated_at: datetime

    @property
    def secret_owner(self) -> str:
        """Whose DEK seals the endpoint's secrets: its merchant's, or the platform's."""
        return self.merchant_id or PLATFORM_OWNER


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One attempt to deliver one event to one endpoint: the API's `webhook_delivery`."""

    id: str
    endpoint_id: str
    event_id: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    next_retry_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery claimed for an attempt now."""

    id: int
    event: Event
    attempts: int  # made before this one
    created_at: datetime  # when the relay (or a redelivery) made it
    deadline_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimedBatch:
    """What a delivery job holds under its endpoint's lease: the endpoint, the ids of the
    secrets that sign (current first), and the deliveries due, in sequence order."""

    endpoint: WebhookEndpoint
    secret_ids: tuple[str, ...]
    deliveries: tuple[DueDelivery, ...]


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one POST came to: a status code, or an error that kept it from getting one."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """A finished attempt and what it decides for its delivery."""

    delivery: DueDelivery
    attempt: DeliveryAttempt
    status: DeliveryStatus  # pending: retried at attempt.next_retry_at


# --- subscriptions ---------------------------------------------------------------------------


def parse_enabled_events(values: Sequence[str], *, merchant_id: str | None) -> tuple[str, ...]:
    """The subscription, checked against the types this owner's events may have: `*` alone
    when it is asked for, else the types in the order given, each once."""
    field = "enabled_events"
    if not values:
        raise InvalidRequest("'enabled_events' needs at least one event type.", field=field)
    if len(values) > MAX_ENABLED_EVENTS:
        raise InvalidRequest(f"'enabled_events' takes at most {MAX_ENABLED_EVENTS}.", field=field)
    allowed = event_types_for(merchant_id)
    for index, value in enumerate(values):
        if value != ALL_EVENTS and value not in allowed:
            owner = "a platform" if merchant_id is None else "a merchant's"
            raise InvalidRequest(
                f"'{{field}}' is not an event type {owner} endpoint can receive.",
                field=(field, str(index)),
                code="event_type_invalid",
            )
    if ALL_EVENTS in values:
        return (ALL_EVENTS,)
    return tuple(dict.fromkeys(values))


def parse_description(value: str | None) -> str | None:
    if value is not None and len(value) > MAX_DESCRIPTION_LENGTH:
        raise InvalidRequest(
            f"'description' is at most {MAX_DESCRIPTION_LENGTH} characters.", field="description"
        )
    return value


# --- secrets and signatures ------------------------------------------------------------------


def new_signing_secret() -> str:
    """`whsec_` and 43 letters and digits (256 bits): nothing the log redactor would cut short."""
    body = secrets.token_urlsafe(_SECRET_RANDOM_BYTES).replace("-", "x").replace("_", "y")
    return SECRET_PREFIX + body


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed with the whole secret string."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secrets_: Sequence[str], timestamp: int, body: bytes) -> str:
    """`t=<timestamp>,v1=<hex>[,v1=<hex>]`: one `v1` per valid secret, the current first."""
    parts = [f"t={timestamp}"] + [f"v1={signature(s, timestamp, body)}" for s in secrets_]
    return ",".join(parts)


# --- the retry schedule ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter until a 2xx, for `window_s` after the delivery began:
    the n-th retry waits between half and all of min(cap, base * 2^(n-1)) ("equal jitter",
    so retries of many deliveries spread out instead of arriving together)."""

    base_s: float = 30.0
    cap_s: float = 6 * 3600.0
    window_s: float = 3 * 86_400.0

    def delay_s(self, attempt: int, unit: float) -> float:
        """The wait after failed attempt number `attempt` (1-based), `unit` a draw in [0, 1)."""
        exponent = min(attempt - 1, 62)  # beyond this the cap holds anyway
        ceiling = min(self.cap_s, self.base_s * math.ldexp(1.0, exponent))
        return ceiling / 2 + unit * ceiling / 2

    def next_attempt(
        self, attempt: int, now: datetime, deadline_at: datetime, unit: float
    ) -> datetime | None:
        """When to try again after failed attempt `attempt`: a last attempt at the deadline
        itself when the backoff would pass it, so a delivery is tried for its whole window;
        None at the deadline."""
        if now >= deadline_at:
            return None
        return min(now + timedelta(seconds=self.delay_s(attempt, unit)), deadline_at)


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    batch_size: int = 20  # deliveries a job claims at a time for one endpoint
    endpoint_concurrency: int = 4  # requests in flight per endpoint
    timeout_s: float = 10.0  # one request, all of it
    retry: RetryPolicy = RetryPolicy()
    disable_after_s: float = 3 * 86_400.0
    rotation_overlap_s: int = 86_400
    attempts_retention_s: float = 30 * 86_400.0
    events_retention_s: float | None = None  # None: events are kept
    # A job gives its endpoint back after this long (and is queued again if work remains),
    # so one busy endpoint never holds a worker slot for ever.
    job_budget_s: float = 60.0

    @property
    def lease_s(self) -> float:
        """How long a job holds its endpoint per batch: every round of requests may run to
        its timeout, and one round more for the transactions around them. A lease that runs
        out early costs a duplicate delivery, never a lost one."""
        rounds = math.ceil(self.batch_size / self.endpoint_concurrency)
        return (rounds + 1) * self.timeout_s


def attempt_outcome(
    delivery: DueDelivery,
    result: SendResult,
    *,
    attempt_id: str,
    endpoint_id: str,
    now: datetime,
    policy: RetryPolicy,
    unit: float,
) -> AttemptOutcome:
    """The attempt record of `result` and the delivery's status after it."""
    number = delivery.attempts + 1
    retry_at = None
    if result.succeeded:
        status = DeliveryStatus.SUCCEEDED
    else:
        retry_at = policy.next_attempt(number, now, delivery.deadline_at, unit)
        status = DeliveryStatus.FAILED if retry_at is None else DeliveryStatus.PENDING
    attempt = DeliveryAttempt(
        id=attempt_id,
        endpoint_id=endpoint_id,
        event_id=delivery.event.id,
        attempt=number,
        status_code=result.status_code,
        error=result.error,
        duration_ms=result.duration_ms,
        next_retry_at=retry_at,
        created_at=now,
    )
    return AttemptOutcome(delivery, attempt, status)


def failing_since_after(
    failing_since: datetime | None, outcomes: Sequence[AttemptOutcome]
) -> datetime | None:
    """An endpoint that answered 2xx to anything is healthy. One that did not has been failing
    since the first delivery it failed was due (made): so a delivery retried for its whole
    three days, in vain, means an endpoint failing for three days."""
    if any(o.status is DeliveryStatus.SUCCEEDED for o in outcomes):
        return None
    if failing_since is not None or not outcomes:
        return failing_since
    return min(o.delivery.created_at for o in outcomes)
