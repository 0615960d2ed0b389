"""Signatures (against an independent verifier and Stripe's own library), the retry schedule,
subscriptions and endpoint health, without I/O."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
import stripe

from clearport.core.errors import InvalidRequest
from clearport.events.domain import Event
from clearport.webhooks.domain import (
    SECRET_PREFIX,
    AttemptOutcome,
    DeliveryStatus,
    DueDelivery,
    RetryPolicy,
    SendResult,
    WebhookOptions,
    attempt_outcome,
    failing_since_after,
    new_signing_secret,
    parse_enabled_events,
    signature_header,
)
from tests.webhook_support import signatures, verify

AT = datetime(2030, 1, 1, tzinfo=UTC)
BODY = b'{"id":"evt_1","object":"event","type":"payment.captured","data":{"object":{}}}'


def test_signature_verifies_independently_and_with_stripe() -> None:
    secret = new_signing_secret()
    assert secret.startswith(SECRET_PREFIX) and secret[len(SECRET_PREFIX) :].isalnum()
    t = int(AT.timestamp())
    header = signature_header([secret], t, BODY)
    assert header.startswith(f"t={t},v1=") and len(signatures(header)) == 1
    assert verify(BODY, header, secret, now=t + 10)
    assert stripe.WebhookSignature.verify_header(BODY.decode(), header, secret, tolerance=None)
    # Another secret, another body, or a stale timestamp fail.
    assert not verify(BODY, header, new_signing_secret(), now=t)
    assert not verify(BODY + b" ", header, secret, now=t)
    assert not verify(BODY, header, secret, now=t + 301)
    an_hour_ago = signature_header([secret], int(time.time()) - 3600, BODY)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(BODY.decode(), an_hour_ago, secret, tolerance=300)


def test_during_a_rotation_both_secrets_sign() -> None:
    new, old = new_signing_secret(), new_signing_secret()
    t = int(AT.timestamp())
    header = signature_header([new, old], t, BODY)
    assert len(signatures(header)) == 2
    for secret in (new, old):
        assert verify(BODY, header, secret, now=t)
        assert stripe.WebhookSignature.verify_header(BODY.decode(), header, secret, None)


def test_retry_delays_grow_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_s=30, cap_s=6 * 3600, window_s=3 * 86_400)
    for attempt in range(1, 40):
        ceiling = min(policy.cap_s, 30 * 2 ** (attempt - 1))
        for unit in (0.0, 0.5, 0.999):
            delay = policy.delay_s(attempt, unit)
            assert ceiling / 2 <= delay <= ceiling
    assert policy.delay_s(1, 0.0) < policy.delay_s(4, 0.0) < policy.delay_s(8, 0.0)


def test_retries_stop_after_the_window() -> None:
    """Counting the schedule out: at most three days of attempts, then `failed`."""
    policy = RetryPolicy()
    deadline = AT + timedelta(seconds=policy.window_s)
    draw = random.Random(7).random
    now, attempts = AT, 1
    while (retry_at := policy.next_attempt(attempts, now, deadline, draw())) is not None:
        assert retry_at > now
        now, attempts = retry_at, attempts + 1
    assert now == deadline  # the last attempt is at the deadline itself
    assert 10 < attempts < 40  # exponential to the cap, then every 3 to 6 hours


def _delivery(attempts: int = 0) -> DueDelivery:
    event = Event("evt_1", "mer_1", "payment.captured", "pay_1", {"object": {}}, AT)
    return DueDelivery(1, event, attempts, AT, AT + timedelta(days=3))


def _outcome(attempts: int, result: SendResult, now: datetime = AT) -> AttemptOutcome:
    return attempt_outcome(
        _delivery(attempts),
        result,
        attempt_id="wd_1",
        endpoint_id="we_1",
        now=now,
        policy=RetryPolicy(),
        unit=0.5,
    )


def test_an_attempt_decides_its_delivery() -> None:
    ok = _outcome(0, SendResult(204, None, 5))
    assert ok.status is DeliveryStatus.SUCCEEDED and ok.attempt.next_retry_at is None
    failed = _outcome(2, SendResult(None, "timeout", 1000))
    assert failed.status is DeliveryStatus.PENDING and failed.attempt.attempt == 3
    assert failed.attempt.next_retry_at == AT + timedelta(seconds=RetryPolicy().delay_s(3, 0.5))
    last = _outcome(19, SendResult(None, "timeout", 3), AT + timedelta(days=3, seconds=-1))
    assert last.attempt.next_retry_at == AT + timedelta(days=3)  # one more, at the deadline
    late = _outcome(20, SendResult(302, "redirect_not_followed", 3), AT + timedelta(days=3))
    assert late.status is DeliveryStatus.FAILED and late.attempt.next_retry_at is None


def test_endpoint_health() -> None:
    ok, bad = _outcome(0, SendResult(200, None, 1)), _outcome(0, SendResult(500, None, 1))
    earlier = AT - timedelta(days=1)
    assert failing_since_after(earlier, [bad, ok]) is None
    assert failing_since_after(earlier, [bad]) == earlier
    # Failing since the failed delivery was due, not since this attempt.
    assert failing_since_after(None, [bad]) == bad.delivery.created_at
    assert failing_since_after(None, []) is None


def test_subscriptions_follow_the_owner() -> None:
    chosen = ["payment.captured", "payout.paid", "payment.captured"]
    assert parse_enabled_events(chosen, merchant_id="mer_1") == ("payment.captured", "payout.paid")
    assert parse_enabled_events(["payment.captured", "*"], merchant_id="mer_1") == ("*",)
    assert parse_enabled_events(["settlement_run.completed"], merchant_id=None) == (
        "settlement_run.completed",
    )
    for events, owner in (
        (["settlement_run.completed"], "mer_1"),
        (["payment.captured"], None),
        (["payment.nope"], "mer_1"),
        ([], "mer_1"),
    ):
        with pytest.raises(InvalidRequest):
            parse_enabled_events(events, merchant_id=owner)


def test_a_lease_outlasts_a_batch() -> None:
    options = WebhookOptions(batch_size=20, endpoint_concurrency=4, timeout_s=10)
    assert options.lease_s >= 5 * 10
