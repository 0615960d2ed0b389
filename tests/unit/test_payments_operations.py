"""Capture, void and refund over the fakes, the failure paths included: a refused capture, a
capture whose answer never comes, a refund the connector refuses, a refund left pending."""

from __future__ import annotations

import asyncio

import pytest

from clearport.connectors.fake import Answer
from clearport.core.errors import ConnectorFailed, InvalidState
from clearport.http.representation import payment_json, refund_json, stored_response_body
from clearport.ledger.domain import AccountKind, AccountRef
from clearport.payments.domain import AttemptStatus, Operation, Payment, PaymentStatus, RefundStatus
from tests.unit.payments_world import World, card_payment, world


async def authorized(w: World, amount: int = 1_000) -> Payment:
    payment = await w.payments.create(w.merchant, card_payment(amount), None)
    assert payment.status is PaymentStatus.AUTHORIZED
    return payment


async def captured(w: World, amount: int = 1_000) -> Payment:
    payment = await w.payments.create(w.merchant, card_payment(amount, capture=True), None)
    assert payment.status is PaymentStatus.CAPTURED
    return payment


def merchant_pending(w: World) -> int:
    return w.ledger.balance(AccountRef(w.merchant.merchant_id or "", AccountKind.PENDING, "usd"))


async def test_partial_capture_posts_what_was_captured() -> None:
    w = world()
    payment = await authorized(w, 1_000)
    claim = await w.claim("cap")
    done = await w.payments.capture(w.merchant, payment.id, 600, claim)
    assert (done.status, done.amount_captured, done.pending_operation) == (
        PaymentStatus.CAPTURED,
        600,
        None,
    )
    assert merchant_pending(w) == 600
    assert w.stored_response("cap") == stored_response_body(payment_json(done))
    assert w.events.types(payment.id) == ["payment.authorized", "payment.captured"]
    assert w.nothing_held_while_calling()


async def test_a_refused_capture_changes_nothing_but_the_attempt() -> None:
    w = world()
    payment = await authorized(w)
    w.connector.will("capture", Answer.DECLINE)
    claim = await w.claim("cap")
    with pytest.raises(ConnectorFailed, match="refused the capture") as refused:
        await w.payments.capture(w.merchant, payment.id, None, claim)
    assert refused.value.code == "connector_error"
    after = w.store.payments[payment.id]
    assert (after.status, after.pending_operation, after.amount_captured) == (
        PaymentStatus.AUTHORIZED,
        None,
        0,
    )
    [attempt] = [a for a in w.store.attempts.values() if a.operation is Operation.CAPTURE]
    assert attempt.status is AttemptStatus.DECLINED
    assert w.ledger.transfers == []
    assert w.events.types(payment.id) == ["payment.authorized"]
    assert not claim.completed_in_transaction  # a 502: the client may retry under its key
    # The marker is cleared: a second capture goes through.
    done = await w.payments.capture(w.merchant, payment.id, None, None)
    assert done.status is PaymentStatus.CAPTURED


async def test_a_capture_without_an_answer_is_resolved_by_the_janitor() -> None:
    w = world(connector_timeout_s=0.01)
    payment = await authorized(w)
    w.connector.will("capture", Answer.LOSE_ANSWER)  # captured at the processor, answer lost
    with pytest.raises(ConnectorFailed) as unknown:
        await w.payments.capture(w.merchant, payment.id, None, None)
    assert unknown.value.code == "connector_timeout"
    assert w.store.payments[payment.id].pending_operation == "capture"
    with pytest.raises(InvalidState, match="A capture of this payment is in progress"):
        await w.payments.void(w.merchant, payment.id, None)
    assert await w.payments.resolve_pending(10) == 1
    after = w.store.payments[payment.id]
    assert (after.status, after.pending_operation) == (PaymentStatus.CAPTURED, None)
    assert merchant_pending(w) == 1_000


async def test_a_second_capture_while_the_first_is_at_the_connector_is_refused() -> None:
    w = world()
    payment = await authorized(w)
    release = w.connector.hold("capture")
    first = asyncio.create_task(w.payments.capture(w.merchant, payment.id, None, None))
    await w.connector.until_held("capture")
    assert w.uow.open == 0  # committed before calling out
    with pytest.raises(InvalidState, match="in progress"):
        await w.payments.capture(w.merchant, payment.id, None, None)
    release.set()
    assert (await first).status is PaymentStatus.CAPTURED
    assert w.connector.calls["capture"] == 1
    assert len(w.ledger.transfers) == 1


async def test_void_and_what_a_voided_payment_refuses() -> None:
    w = world()
    payment = await authorized(w)
    voided = await w.payments.void(w.merchant, payment.id, None)
    assert voided.status is PaymentStatus.VOIDED
    for attempt in (
        w.payments.capture(w.merchant, payment.id, None, None),
        w.payments.refund(w.merchant, payment.id, None, None, None),
    ):
        with pytest.raises(InvalidState, match="'voided'"):
            await attempt


async def test_refunds_in_parts_until_the_payment_is_refunded() -> None:
    w = world()
    payment = await captured(w, 1_000)
    claim = await w.claim("rfd")
    part = await w.payments.refund(w.merchant, payment.id, 400, "requested_by_customer", claim)
    assert part.status is RefundStatus.SUCCEEDED
    assert w.stored_response("rfd") == stored_response_body(refund_json(part))
    rest = await w.payments.refund(w.merchant, payment.id, None, None, None)
    assert rest.amount == 600
    after = w.store.payments[payment.id]
    assert (after.status, after.amount_refunded, after.amount_refund_pending) == (
        PaymentStatus.REFUNDED,
        1_000,
        0,
    )
    assert merchant_pending(w) == 0
    assert w.events.types() == [
        "payment.captured",
        "refund.succeeded",
        "refund.succeeded",
        "payment.refunded",
    ]
    assert w.txlog.history(rest.id) == [(None, "pending"), ("pending", "succeeded")]
    with pytest.raises(InvalidState, match="'refunded'"):
        await w.payments.refund(w.merchant, payment.id, None, None, None)


@pytest.mark.parametrize("answer", [Answer.DECLINE, Answer.FAIL])
async def test_a_failed_refund_gives_the_amount_back(answer: Answer) -> None:
    w = world()
    payment = await captured(w, 1_000)
    w.connector.will("refund", answer)
    claim = await w.claim("rfd")
    failed = await w.payments.refund(w.merchant, payment.id, None, None, claim)
    assert failed.status is RefundStatus.FAILED
    assert w.stored_response("rfd") == stored_response_body(refund_json(failed))
    after = w.store.payments[payment.id]
    assert (after.status, after.amount_refunded, after.amount_refund_pending) == (
        PaymentStatus.CAPTURED,
        0,
        0,
    )
    assert [t.code for t in w.ledger.transfers] == ["capture"]  # no refund posting
    assert w.events.types(failed.id) == ["refund.failed"]
    assert w.txlog.history(failed.id) == [(None, "pending"), ("pending", "failed")]
    again = await w.payments.refund(w.merchant, payment.id, None, None, None)
    assert (again.status, again.amount) == (RefundStatus.SUCCEEDED, 1_000)


async def test_a_refund_without_an_answer_stays_pending_until_the_janitor() -> None:
    w = world(connector_timeout_s=0.01)
    payment = await captured(w, 1_000)
    w.connector.will("refund", Answer.TIME_OUT)  # never reached the processor
    pending = await w.payments.refund(w.merchant, payment.id, None, None, None)
    assert pending.status is RefundStatus.PENDING
    assert w.store.payments[payment.id].amount_refund_pending == 1_000
    with pytest.raises(InvalidState, match="nothing left to refund"):
        await w.payments.refund(w.merchant, payment.id, None, None, None)
    assert await w.payments.resolve_pending(10) == 1
    resolved = w.store.refunds[pending.id]
    assert resolved.status is RefundStatus.FAILED  # the processor never saw it
    assert w.store.payments[payment.id].amount_refund_pending == 0
    assert merchant_pending(w) == 1_000
