"""Faults injected at the connector port around a real connector (the in-process simulator),
as a fault-injection simulation drives them: what the processor did, what the caller saw."""

from __future__ import annotations

from clearport.connectors.domain import (
    BreakerPolicy,
    CircuitBreaker,
    ConnectorCard,
    ConnectorStatus,
)
from clearport.connectors.faults import Fault, FaultyConnector
from clearport.connectors.guard import GuardedConnector
from clearport.connectors.simulator.connector import SimulatorConnector
from clearport.core.sensitive import SensitiveStr

CARD = ConnectorCard(SensitiveStr("4242424242424242"), 12, 2035)


def faulty() -> tuple[GuardedConnector, FaultyConnector, SimulatorConnector]:
    processor = SimulatorConnector()
    injected = FaultyConnector(processor, late_s=0.05)
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=100, cooldown_s=1))
    return GuardedConnector(injected, breaker, timeout_s=0.02), injected, processor


async def test_a_lost_answer_is_unknown_to_the_caller_and_approved_at_the_processor() -> None:
    guard, injected, processor = faulty()
    injected.will("authorize", Fault.LOSE_ANSWER)
    seen = await guard.authorize("att_1", 100, "usd", CARD, capture=False)
    assert (seen.status, seen.decline_code) == (ConnectorStatus.UNKNOWN, "timeout")
    assert (await processor.status("att_1")).status is ConnectorStatus.APPROVED
    # The next call is not faulted.
    assert (await guard.authorize("att_2", 100, "usd", CARD, capture=False)).status is (
        ConnectorStatus.APPROVED
    )
    assert injected.injected == [("authorize", Fault.LOSE_ANSWER)]


async def test_a_late_call_after_its_reversal_is_refused_by_the_processor() -> None:
    guard, injected, processor = faulty()
    injected.will("authorize", Fault.LATE)
    seen = await guard.authorize("att_1", 100, "usd", CARD, capture=False)
    assert seen.status is ConnectorStatus.UNKNOWN
    assert (await guard.reverse("att_r", "att_1", 100, "usd")).status is ConnectorStatus.APPROVED
    await injected.settle_late()  # the original arrives after all
    assert (await processor.status("att_1")).response_code == "96"


async def test_resets_and_refusals() -> None:
    guard, injected, processor = faulty()
    injected.will("capture", Fault.RESET_AFTER, Fault.RESET_BEFORE, Fault.REFUSE)
    after = await guard.capture("att_c1", "att_a", 100, "usd")
    before = await guard.capture("att_c2", "att_a", 100, "usd")
    refused = await guard.capture("att_c3", "att_a", 100, "usd")
    assert (after.status, before.status) == (ConnectorStatus.UNKNOWN, ConnectorStatus.UNKNOWN)
    assert refused.status is ConnectorStatus.UNREACHABLE
    assert processor.calls["capture"] == 1  # only the reset after it acted reached it


async def test_a_duplicate_reaches_the_processor_twice_and_answers_once() -> None:
    guard, injected, processor = faulty()
    injected.will("refund", Fault.DUPLICATE)
    seen = await guard.refund("att_f", "att_a", 100, "usd")
    assert seen.status is ConnectorStatus.APPROVED
    assert processor.calls["refund"] == 2
