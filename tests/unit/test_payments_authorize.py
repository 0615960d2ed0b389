"""Authorizations over the fakes: approvals, sales, declines, failures, timeouts, the stored
idempotent response and a duplicate request while the first is held at the connector."""

from __future__ import annotations

import asyncio

import pytest

from clearport.connectors.fake import Answer
from clearport.core.errors import IdempotencyInProgress, InvalidRequest, PermissionDenied
from clearport.http.representation import payment_json, stored_response_body
from clearport.idempotency.service import Replay
from clearport.ledger.domain import PLATFORM, AccountKind, AccountRef
from clearport.merchants.domain import MerchantStatus
from clearport.payments.domain import AttemptStatus, Operation, PaymentStatus
from tests.unit.payments_world import card_payment, world


async def test_an_approval_is_two_writes_and_stores_its_response() -> None:
    w = world()
    claim = await w.claim("k1")
    payment = await w.payments.create(w.merchant, card_payment(), claim)
    assert payment.status is PaymentStatus.AUTHORIZED
    assert payment.auth_code is not None and payment.authorized_at is not None
    # One transaction before the call, one autocommit statement after it, nothing held between.
    assert (w.uow.commits, w.uow.rollbacks) == (2, 0)
    assert w.nothing_held_while_calling()
    assert claim.completed_in_transaction
    assert w.stored_response("k1") == stored_response_body(payment_json(payment))
    assert w.txlog.history(payment.id) == [(None, "pending"), ("pending", "authorized")]
    assert w.events.types() == ["payment.authorized"]
    assert w.events.events[0].data == {"object": payment_json(payment)}
    assert w.store.attempts[payment.auth_attempt_id].status is AttemptStatus.SUCCEEDED
    assert w.ledger.transfers == []  # an authorization moves no money
    assert w.vault.cards[payment.token_id][0].last4 == "4242"


async def test_a_sale_posts_the_capture_to_the_ledger() -> None:
    w = world()
    payment = await w.payments.create(w.merchant, card_payment(2_500, capture=True), None)
    assert payment.status is PaymentStatus.CAPTURED
    assert payment.amount_captured == 2_500
    assert w.events.types() == ["payment.captured"]
    [transfer] = w.ledger.transfers
    assert (transfer.id, transfer.code, transfer.amount_minor) == (
        f"{payment.id}:capture",
        "capture",
        2_500,
    )
    merchant_id = w.merchant.merchant_id or ""
    assert w.ledger.balance(AccountRef(merchant_id, AccountKind.PENDING, "usd")) == 2_500
    receivable = AccountRef(PLATFORM, AccountKind.PROCESSOR_RECEIVABLE, "usd")
    assert w.ledger.balance(receivable) == 2_500


@pytest.mark.parametrize(
    ("answer", "status", "decline_code"),
    [
        (Answer.DECLINE, PaymentStatus.DECLINED, "do_not_honor"),
        (Answer.FAIL, PaymentStatus.FAILED, "processing_error"),
    ],
)
async def test_a_refusal_is_final(answer: Answer, status: PaymentStatus, decline_code: str) -> None:
    w = world()
    w.connector.will("authorize", answer)
    claim = await w.claim("k1")
    payment = await w.payments.create(w.merchant, card_payment(capture=True), claim)
    assert payment.status is status
    assert payment.decline_code == decline_code
    assert payment.amount_captured == 0
    assert w.events.types() == [f"payment.{status}"]
    assert w.ledger.transfers == []
    assert w.stored_response("k1") == stored_response_body(payment_json(payment))


@pytest.mark.parametrize("answer", [Answer.TIME_OUT, Answer.LOSE_ANSWER, Answer.BREAK])
async def test_no_answer_fails_the_payment_and_reverses_the_call(answer: Answer) -> None:
    """The processor may have acted on a call whose answer never came: the payment fails
    (never read as declined) and the call is reversed, so no authorization is left standing."""
    w = world(connector_timeout_s=0.01)
    w.connector.will("authorize", answer)
    claim = await w.claim("k1")
    payment = await w.payments.create(w.merchant, card_payment(), claim)
    assert (payment.status, payment.decline_code) == (PaymentStatus.FAILED, "processing_error")
    first = w.store.attempts[payment.auth_attempt_id]
    assert first.status is AttemptStatus.FAILED
    assert first.decline_code == ("processing_error" if answer is Answer.BREAK else "timeout")
    [reversal] = [a for a in w.store.attempts.values() if a.operation is Operation.REVERSE]
    assert (reversal.reverses, reversal.status) == (first.id, AttemptStatus.SUCCEEDED)
    assert w.connector.reversed == [first.id]
    assert w.events.types() == ["payment.failed"]
    assert w.nothing_held_while_calling()
    # Answered and stored in the answer's transaction.
    assert w.stored_response("k1") == stored_response_body(payment_json(payment))


async def test_refusals_before_the_call_write_nothing() -> None:
    w = world(require_cvc=True)
    with pytest.raises(InvalidRequest) as missing:
        await w.payments.create(w.merchant, card_payment(cvc=None), None)
    assert missing.value.field == ("source", "card", "cvc")
    w.merchants.merchants[w.merchant.merchant_id or ""].status = MerchantStatus.SUSPENDED
    with pytest.raises(PermissionDenied, match="suspended"):
        await w.payments.create(w.merchant, card_payment(), None)
    assert w.store.payments == {} and w.vault.cards == {} and w.txlog.entries == []
    assert w.connector.calls["authorize"] == 0
    assert w.uow.rollbacks == 2


async def test_a_retry_while_the_first_is_held_gets_409_then_the_replay() -> None:
    """Deterministic: the first request waits inside the connector while the same key comes
    again; after the first finishes, the key replays its response byte for byte."""
    w = world()
    release = w.connector.hold("authorize")
    first_claim = await w.claim("same-key")
    first = asyncio.create_task(w.payments.create(w.merchant, card_payment(), first_claim))
    await w.connector.until_held("authorize")
    with pytest.raises(IdempotencyInProgress):
        await w.begin("same-key")
    release.set()
    payment = await first
    replay = await w.begin("same-key")
    assert isinstance(replay, Replay)
    assert (replay.status, replay.body) == (201, stored_response_body(payment_json(payment)))
    assert w.connector.calls["authorize"] == 1
    assert len(w.store.payments) == 1


async def test_a_retry_after_a_crash_recovers_the_first_payment_and_never_pays_twice() -> None:
    w = world()
    release = w.connector.hold("authorize")
    claim = await w.claim("k1")
    first = asyncio.create_task(w.payments.create(w.merchant, card_payment(), claim))
    await w.connector.until_held("authorize")
    first.cancel()  # the process dies while the connector has the request
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    [payment_id] = w.store.payments
    w.clock.advance(61)  # past the idempotency lock timeout
    retry = await w.claim("k1")
    assert retry.recovered_resource == payment_id
    with pytest.raises(IdempotencyInProgress):  # still pending: the janitor decides first
        await w.payments.create(w.merchant, card_payment(), retry)
    assert retry.keep_open
    assert await w.payments.resolve_pending(10) == 1
    w.clock.advance(61)
    again = await w.claim("k1")
    recovered = await w.payments.create(w.merchant, card_payment(), again)
    assert (recovered.id, recovered.status) == (payment_id, PaymentStatus.FAILED)
    assert w.stored_response("k1") == stored_response_body(payment_json(recovered))
    assert w.connector.calls["authorize"] == 1  # never authorized twice
    assert len(w.store.payments) == 1
