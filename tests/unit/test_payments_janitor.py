"""The janitor over the fakes: it never holds a transaction while it calls out, two janitors
never both write an answer, and an expiring authorization cannot be captured meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from clearport.connectors.fake import Answer
from clearport.core.errors import InvalidState
from clearport.payments.domain import AttemptStatus, Operation, Payment, PaymentStatus
from tests.unit.payments_world import WINDOW_S, World, card_payment, world


async def pending_payment(w: World, answer: Answer) -> Payment:
    """A payment whose request died while the connector had it (LOSE_ANSWER: approved there,
    TIME_OUT: never seen), as a crash leaves it."""
    w.connector.will("authorize", answer)
    request = asyncio.create_task(w.payments.create(w.merchant, card_payment(), None))
    await w.connector.until_held("authorize")
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    [payment] = w.store.payments.values()
    assert payment.status is PaymentStatus.PENDING
    return payment


async def test_an_approval_whose_answer_was_lost_is_finished() -> None:
    w = world()
    payment = await pending_payment(w, Answer.LOSE_ANSWER)
    assert await w.payments.resolve_pending(10) == 1
    after = w.store.payments[payment.id]
    assert after.status is PaymentStatus.AUTHORIZED and after.auth_code is not None
    assert w.events.types() == ["payment.authorized"]
    assert w.connector.calls["void"] == w.connector.calls["reverse"] == 0
    assert await w.payments.resolve_pending(10) == 0


async def test_an_authorization_the_processor_never_saw_is_failed_then_released() -> None:
    w = world()
    payment = await pending_payment(w, Answer.TIME_OUT)
    assert await w.payments.resolve_pending(10) == 1
    after = w.store.payments[payment.id]
    assert (after.status, after.decline_code) == (PaymentStatus.FAILED, "processing_error")
    assert w.events.types() == ["payment.failed"]
    # Released by a reversal of the call itself, recorded as an attempt of its own.
    assert w.connector.reversed == [payment.auth_attempt_id]
    [reversal] = [a for a in w.store.attempts.values() if a.operation is Operation.REVERSE]
    assert reversal.reverses == payment.auth_attempt_id
    assert reversal.status is AttemptStatus.SUCCEEDED
    assert w.nothing_held_while_calling()


async def test_the_grace_period_spares_attempts_still_in_flight() -> None:
    w = world()
    await pending_payment(w, Answer.TIME_OUT)
    w.payments.janitor_grace_s = 60
    assert await w.payments.resolve_pending(10) == 0
    w.clock.advance(61)
    assert await w.payments.resolve_pending(10) == 1


async def test_nothing_is_held_while_the_janitor_asks() -> None:
    w = world()
    payment = await pending_payment(w, Answer.LOSE_ANSWER)
    release = w.connector.hold("status")
    janitor = asyncio.create_task(w.payments.resolve_pending(10))
    await w.connector.until_held("status")
    assert w.uow.open == 0
    # Meanwhile other payments go through: no transaction (here: no lock) is in the way.
    other = await w.payments.create(w.merchant, card_payment(), None)
    assert other.status is PaymentStatus.AUTHORIZED
    release.set()
    assert await janitor == 1
    assert w.store.payments[payment.id].status is PaymentStatus.AUTHORIZED


async def test_two_janitors_at_once_write_one_answer() -> None:
    w = world()
    payment = await pending_payment(w, Answer.LOSE_ANSWER)
    release = w.connector.hold("status")
    first = asyncio.create_task(w.payments.resolve_pending(10))
    second = asyncio.create_task(w.payments.resolve_pending(10))
    await w.connector.until_held("status", 2)  # both have chosen the same attempt
    release.set()
    assert sorted(await asyncio.gather(first, second)) == [0, 1]
    assert w.store.payments[payment.id].status is PaymentStatus.AUTHORIZED
    assert w.events.types() == ["payment.authorized"]
    assert w.txlog.history(payment.id) == [(None, "pending"), ("pending", "authorized")]


async def test_a_janitor_that_learns_nothing_never_voids_what_another_wrote() -> None:
    """One janitor's status query breaks while another learns of the approval and writes it
    first: the first fails the payment only if it still can, and voids only if it did."""
    w = world()
    payment = await pending_payment(w, Answer.LOSE_ANSWER)
    w.connector.will("status", Answer.BREAK)
    release = w.connector.hold("status")
    unlucky = asyncio.create_task(w.payments.resolve_pending(10))
    await w.connector.until_held("status")  # it has chosen the attempt and is asking
    w.connector.let_through("status")
    assert await w.payments.resolve_pending(10) == 1  # another janitor, with an answer
    release.set()
    assert await unlucky == 0
    assert w.store.payments[payment.id].status is PaymentStatus.AUTHORIZED
    assert w.connector.calls["reverse"] == 0


async def test_an_expiring_authorization_cannot_be_captured_meanwhile() -> None:
    w = world()
    payment = await w.payments.create(w.merchant, card_payment(), None)
    assert await w.payments.expire_authorizations(10) == 0  # not old enough yet
    w.clock.advance(WINDOW_S + 1)
    release = w.connector.hold("void")
    expiry = asyncio.create_task(w.payments.expire_authorizations(10))
    await w.connector.until_held("void")
    assert w.uow.open == 0  # claimed and committed before calling out
    with pytest.raises(InvalidState, match="of this payment is in progress"):
        await w.payments.capture(w.merchant, payment.id, None, None)
    assert await w.payments.expire_authorizations(10) == 0  # another janitor finds nothing
    release.set()
    assert await expiry == 1
    after = w.store.payments[payment.id]
    assert (after.status, after.pending_operation) == (PaymentStatus.EXPIRED, None)
    assert w.events.types() == ["payment.authorized", "payment.expired"]
    assert w.connector.calls["capture"] == 0


async def test_an_expiry_the_connector_refuses_is_tried_again() -> None:
    w = world()
    payment = await w.payments.create(w.merchant, card_payment(), None)
    w.clock.advance(WINDOW_S + 1)
    w.connector.will("void", Answer.FAIL)
    assert await w.payments.expire_authorizations(10) == 0
    after = w.store.payments[payment.id]
    assert (after.status, after.pending_operation) == (PaymentStatus.AUTHORIZED, None)
    assert await w.payments.expire_authorizations(10) == 1
    assert w.store.payments[payment.id].status is PaymentStatus.EXPIRED


async def test_an_expiry_cut_off_by_a_crash_is_resolved() -> None:
    w = world()
    payment = await w.payments.create(w.merchant, card_payment(), None)
    w.clock.advance(WINDOW_S + 1)
    release = w.connector.hold("void")
    expiry = asyncio.create_task(w.payments.expire_authorizations(10))
    await w.connector.until_held("void")
    expiry.cancel()  # the worker dies while the void is out
    with pytest.raises(asyncio.CancelledError):
        await expiry
    release.set()
    [attempt] = [a for a in w.store.attempts.values() if a.operation is Operation.EXPIRE]
    assert attempt.status is AttemptStatus.PENDING
    # The janitor sends the void again under the same reference (a repeat is harmless).
    assert await w.payments.resolve_pending(10) == 1
    after = w.store.payments[payment.id]
    assert (after.status, after.pending_operation) == (PaymentStatus.EXPIRED, None)
    assert w.connector.calls["void"] == 2
    assert await w.payments.expire_authorizations(10) == 0


async def test_an_expiry_whose_answer_was_lost_stays_pending_until_the_processor_answers() -> None:
    """The processor voided the authorization and the answer never came: the expiry is sent
    again under its reference, never written failed while the hold is gone (found by the money
    simulation, seed 56: ours `authorized`, the processor's `voided`)."""
    w = world()
    payment = await w.payments.create(w.merchant, card_payment(), None)
    w.clock.advance(WINDOW_S + 1)
    w.connector.will("void", Answer.LOSE_ANSWER)
    assert await w.payments.expire_authorizations(10) == 0
    [attempt] = [a for a in w.store.attempts.values() if a.operation is Operation.EXPIRE]
    assert attempt.status is AttemptStatus.PENDING
    assert w.store.payments[payment.id].pending_operation == "expire"
    w.clock.advance(3_600)
    assert await w.payments.resolve_pending(10) == 1
    after = w.store.payments[payment.id]
    assert (after.status, after.pending_operation) == (PaymentStatus.EXPIRED, None)
