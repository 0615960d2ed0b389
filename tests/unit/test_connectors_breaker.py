"""The circuit breaker's state machine, and the guard every connector call goes through."""

from __future__ import annotations

import asyncio

import pytest

from clearport.connectors.domain import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    ConnectorCard,
    ConnectorResult,
    ConnectorStatus,
)
from clearport.connectors.fake import Answer, FakeConnector
from clearport.connectors.guard import GuardedConnector
from clearport.core.sensitive import SensitiveStr

CARD = ConnectorCard(SensitiveStr("4242424242424242"), 12, 2035)


def test_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=3, cooldown_s=10))
    for _ in range(2):
        assert breaker.allow(0)
        breaker.record(failed=True, now=0)
    assert breaker.allow(0)
    breaker.record(failed=False, now=0)  # a success in between: the count starts again
    for _ in range(2):
        breaker.record(failed=True, now=0)
    assert breaker.state(0) is BreakerState.CLOSED
    breaker.record(failed=True, now=1)
    assert breaker.state(1) is BreakerState.OPEN
    assert not breaker.allow(5)


def test_half_open_lets_one_trial_through_which_decides() -> None:
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=1, cooldown_s=10))
    breaker.record(failed=True, now=0)
    assert not breaker.allow(9.9)
    assert breaker.state(10) is BreakerState.HALF_OPEN
    assert breaker.allow(10)  # the trial
    assert not breaker.allow(10)  # one at a time
    breaker.record(failed=True, now=11)  # the trial failed: open again, for a full cool-down
    assert breaker.state(20) is BreakerState.OPEN
    assert breaker.allow(21)
    breaker.record(failed=False, now=21)
    assert breaker.state(21) is BreakerState.CLOSED
    assert breaker.allow(21) and breaker.allow(21)


def test_an_abandoned_trial_frees_the_slot() -> None:
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=1, cooldown_s=0))
    breaker.record(failed=True, now=0)
    assert breaker.allow(1)
    breaker.abandon()
    assert breaker.allow(1)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def guarded(
    fake: FakeConnector, *, threshold: int = 2, timeout_s: float = 1.0
) -> tuple[GuardedConnector, Clock]:
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=threshold, cooldown_s=30))
    return GuardedConnector(fake, breaker, timeout_s=timeout_s, monotonic=clock), clock


async def test_declines_never_open_the_breaker() -> None:
    fake = FakeConnector()
    fake.will("authorize", *[Answer.DECLINE] * 5)
    guard, _ = guarded(fake)
    for _ in range(5):
        result = await guard.authorize("att_x", 100, "usd", CARD, capture=False)
        assert result.status is ConnectorStatus.DECLINED
    assert guard.breaker_state() is BreakerState.CLOSED


async def test_technical_failures_open_it_and_then_nothing_leaves() -> None:
    fake = FakeConnector()
    fake.will("authorize", Answer.FAIL, Answer.REFUSE)
    guard, clock = guarded(fake)
    assert (await guard.authorize("a1", 100, "usd", CARD, capture=False)).decline_code == (
        "processing_error"
    )
    refused = await guard.authorize("a2", 100, "usd", CARD, capture=False)
    assert (refused.status, refused.decline_code) == (
        ConnectorStatus.UNREACHABLE,
        "connection_refused",
    )
    assert guard.breaker_state() is BreakerState.OPEN and not guard.allows()
    blocked = await guard.authorize("a3", 100, "usd", CARD, capture=False)
    assert (blocked.status, blocked.decline_code) == (ConnectorStatus.UNREACHABLE, "breaker_open")
    assert fake.calls["authorize"] == 2  # the third never reached the connector
    clock.now = 30
    assert guard.breaker_state() is BreakerState.HALF_OPEN
    trial = await guard.authorize("a4", 100, "usd", CARD, capture=False)
    assert trial.status is ConnectorStatus.APPROVED
    assert guard.breaker_state() is BreakerState.CLOSED


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (Answer.TIME_OUT, ConnectorStatus.UNKNOWN, "timeout"),
        (Answer.BREAK, ConnectorStatus.UNKNOWN, "processing_error"),
    ],
)
async def test_no_answer_is_unknown_never_a_decline(
    answer: Answer, status: ConnectorStatus, code: str
) -> None:
    fake = FakeConnector()
    fake.will("capture", answer)
    guard, _ = guarded(fake, timeout_s=0.01)
    result = await guard.capture("att_c", "att_a", 100, "usd")
    assert (result.status, result.decline_code) == (status, code)
    assert result.is_technical_failure


async def test_a_cancelled_caller_is_not_counted_and_frees_a_trial() -> None:
    fake = FakeConnector()
    guard, clock = guarded(fake, threshold=1)
    fake.will("authorize", Answer.FAIL)
    await guard.authorize("a1", 100, "usd", CARD, capture=False)
    clock.now = 30
    release = fake.hold("authorize")
    call = asyncio.create_task(guard.authorize("a2", 100, "usd", CARD, capture=False))
    await fake.until_held("authorize")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    release.set()
    fake.let_through("authorize")
    assert guard.breaker_state() is BreakerState.HALF_OPEN
    result = await guard.authorize("a3", 100, "usd", CARD, capture=False)
    assert result.status is ConnectorStatus.APPROVED


def test_every_status_is_classified() -> None:
    failures = {s for s in ConnectorStatus if ConnectorResult(status=s).is_technical_failure}
    assert failures == {
        ConnectorStatus.ERROR,
        ConnectorStatus.UNKNOWN,
        ConnectorStatus.UNREACHABLE,
    }
