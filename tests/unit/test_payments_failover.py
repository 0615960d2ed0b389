"""Failover over the fakes: a technical failure moves the payment to the next candidate (each
attempt a row of its own, `routing.failover` saying why), a call that may have reached the
processor is reversed there, and a decline never fails over."""

from __future__ import annotations

import pytest

from clearport.connectors.fake import Answer
from clearport.core.errors import ConnectorFailed
from clearport.http.representation import payment_json
from clearport.payments.domain import AttemptStatus, Operation, PaymentStatus
from tests.unit.payments_world import World, card_payment, world


def attempts(w: World, operation: Operation) -> list[tuple[str, AttemptStatus, str | None]]:
    return [
        (a.connector, a.status, a.decline_code)
        for a in sorted(w.store.attempts.values(), key=lambda a: a.created_at)
        if a.operation is operation
    ]


@pytest.mark.parametrize(
    ("answer", "code", "reversed_"),
    [
        (Answer.FAIL, "processing_error", False),  # the processor answered 96: nothing stands
        (Answer.REFUSE, "connection_refused", False),  # nothing was sent
        (Answer.TIME_OUT, "timeout", True),  # it may have acted
        (Answer.LOSE_ANSWER, "timeout", True),  # it did act
        (Answer.BREAK, "processing_error", True),  # the connection broke while it was out
    ],
)
async def test_a_technical_failure_fails_over(answer: Answer, code: str, reversed_: bool) -> None:
    w = world(backups=("backup",), connector_timeout_s=0.01)
    w.connector.will("authorize", answer)
    claim = await w.claim("k1")
    payment = await w.payments.create(w.merchant, card_payment(), claim)
    assert (payment.status, payment.connector) == (PaymentStatus.AUTHORIZED, "backup")
    assert payment.routing["candidates"] == ["fake", "backup"]
    assert payment.routing["chosen"] == "backup"
    assert payment.routing["failover"] == [{"connector": "fake", "decline_code": code}]
    assert attempts(w, Operation.AUTHORIZE) == [
        ("fake", AttemptStatus.FAILED, code),
        ("backup", AttemptStatus.SUCCEEDED, None),
    ]
    assert w.store.attempts[payment.auth_attempt_id].connector == "backup"
    expected = [("fake", AttemptStatus.SUCCEEDED, None)] if reversed_ else []
    assert attempts(w, Operation.REVERSE) == expected
    assert len(w.connector.reversed) == int(reversed_)
    assert w.events.types() == ["payment.authorized"]
    assert w.txlog.history(payment.id) == [(None, "pending"), ("pending", "authorized")]
    shown = payment_json(payment)["routing"]
    assert shown["failover"] == [{"connector": "fake", "decline_code": code}]
    assert w.stored_response("k1") is not None
    assert w.nothing_held_while_calling()


@pytest.mark.parametrize("answer", [Answer.DECLINE, Answer.APPROVE])
async def test_a_decline_or_an_approval_never_fails_over(answer: Answer) -> None:
    w = world(backups=("backup",))
    w.connector.will("authorize", answer)
    payment = await w.payments.create(w.merchant, card_payment(), None)
    assert payment.connector == "fake"
    assert payment.routing["failover"] == []
    assert w.connectors["backup"].calls["authorize"] == 0


async def test_when_every_candidate_fails_the_payment_fails_with_the_last() -> None:
    w = world(backups=("second", "third"), connector_timeout_s=0.01)
    w.connector.will("authorize", Answer.FAIL)
    w.connectors["second"].will("authorize", Answer.TIME_OUT)
    w.connectors["third"].will("authorize", Answer.REFUSE)
    payment = await w.payments.create(w.merchant, card_payment(), None)
    assert (payment.status, payment.decline_code) == (PaymentStatus.FAILED, "processing_error")
    assert payment.routing["chosen"] == "third"
    assert payment.routing["failover"] == [
        {"connector": "fake", "decline_code": "processing_error"},
        {"connector": "second", "decline_code": "timeout"},
    ]
    assert [c for c, *_ in attempts(w, Operation.AUTHORIZE)] == ["fake", "second", "third"]
    assert attempts(w, Operation.REVERSE) == [("second", AttemptStatus.SUCCEEDED, None)]
    assert w.events.types() == ["payment.failed"]


async def test_an_open_breaker_is_skipped_without_a_call() -> None:
    w = world(backups=("backup",), breaker_failures=1)
    w.connector.will("authorize", Answer.FAIL)
    first = await w.payments.create(w.merchant, card_payment(), None)
    assert first.connector == "backup"  # and `fake`'s breaker is open now
    second = await w.payments.create(w.merchant, card_payment(), None)
    assert second.status is PaymentStatus.AUTHORIZED
    assert second.routing["chosen"] == "backup"
    assert second.routing["failover"] == [{"connector": "fake", "decline_code": "breaker_open"}]
    assert w.connector.calls["authorize"] == 1
    assert [c for c, *_ in attempts(w, Operation.AUTHORIZE)].count("fake") == 1


async def test_a_reversal_the_processor_does_not_acknowledge_is_sent_again() -> None:
    w = world(connector_timeout_s=0.01)
    w.connector.will("authorize", Answer.LOSE_ANSWER)
    w.connector.will("reverse", Answer.TIME_OUT)
    payment = await w.payments.create(w.merchant, card_payment(), None)
    assert payment.status is PaymentStatus.FAILED
    [reversal] = [a for a in w.store.attempts.values() if a.operation is Operation.REVERSE]
    assert w.store.attempts[reversal.id].status is AttemptStatus.PENDING
    assert w.store.attempts[reversal.id].tries == 1
    assert await w.payments.resolve_pending(10) == 0  # postponed: not due yet
    w.clock.advance(11)
    assert await w.payments.resolve_pending(10) == 1
    assert w.store.attempts[reversal.id].status is AttemptStatus.SUCCEEDED
    assert w.connector.reversed == [payment.auth_attempt_id]
    assert w.connector.calls["reverse"] == 2


async def test_with_no_connector_to_try_nothing_is_written() -> None:
    w = world(candidates=False)  # as when the configured order names nothing usable
    with pytest.raises(ConnectorFailed) as refused:
        await w.payments.create(w.merchant, card_payment(), None)
    assert refused.value.code == "connector_unavailable"
    assert w.store.payments == {} and w.vault.cards == {}
