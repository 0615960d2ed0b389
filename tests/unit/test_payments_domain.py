"""The payment domain without I/O: the state machines, the records a change writes, and the
API's representation of payments, refunds and events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearport.connectors.domain import ConnectorResult, ConnectorStatus
from clearport.core.errors import InternalError, InvalidState
from clearport.events.domain import Event
from clearport.http.representation import (
    event_json,
    payment_json,
    refund_json,
    stored_response_body,
)
from clearport.ledger.domain import net_by_currency, postings_of
from clearport.payments.attempts import new_attempt
from clearport.payments.domain import (
    Operation,
    Outcome,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    after_authorization,
    check_refund_transition,
    settle_refund,
)
from clearport.payments.records import (
    capture_transfer,
    payment_entry,
    payment_event,
    refund_entry,
    refund_transfer,
)

AT = datetime(2030, 1, 1, tzinfo=UTC)
APPROVED = ConnectorResult(ConnectorStatus.APPROVED, "00", auth_code="123456")


def payment(status: PaymentStatus = PaymentStatus.PENDING, *, capture: bool = False) -> Payment:
    return Payment(
        id="pay_1",
        merchant_id="mer_1",
        amount=1_000,
        currency="eur",
        status=status,
        capture_requested=capture,
        card_brand="visa",
        card_bin="424242",
        card_last4="4242",
        card_exp_month=12,
        card_exp_year=2035,
        card_fingerprint="fp",
        token_id="tok_1",
        auth_attempt_id="att_1",
        connector="fake",
        routing={"rule": "default", "candidates": ["fake"], "reason": "only connector"},
        reference="order-1",
        metadata={"k": "ü"},
        created_at=AT,
        updated_at=AT,
    )


def refund(amount: int = 400) -> Refund:
    return Refund(
        "rfd_1", "pay_1", "mer_1", amount, "eur", RefundStatus.PENDING, None, "att_2", AT, AT
    )


def captured(amount: int = 1_000) -> Payment:
    p = after_authorization(payment(capture=True), Outcome.SUCCEEDED, APPROVED, AT)
    assert p.amount_captured == amount
    return p


def test_an_authorization_leaves_the_original_untouched() -> None:
    original = payment()
    authorized = after_authorization(original, Outcome.SUCCEEDED, APPROVED, AT)
    assert original.status is PaymentStatus.PENDING
    assert (authorized.status, authorized.auth_code, authorized.authorized_at) == (
        PaymentStatus.AUTHORIZED,
        "123456",
        AT,
    )
    sale = after_authorization(payment(capture=True), Outcome.SUCCEEDED, APPROVED, AT)
    assert (sale.status, sale.amount_captured, sale.captured_at) == (
        PaymentStatus.CAPTURED,
        1_000,
        AT,
    )
    declined = after_authorization(payment(), Outcome.DECLINED, APPROVED, AT)
    assert (declined.status, declined.authorized_at) == (PaymentStatus.DECLINED, None)


def test_operations_take_the_marker_and_give_it_back() -> None:
    p = after_authorization(payment(), Outcome.SUCCEEDED, APPROVED, AT)
    p.start_operation(Operation.CAPTURE, AT)
    with pytest.raises(InvalidState, match="A capture of this payment is in progress"):
        p.start_operation(Operation.VOID, AT)
    assert p.finish_operation(Operation.CAPTURE, 700, Outcome.DECLINED, AT) is None
    assert (p.status, p.pending_operation) == (PaymentStatus.AUTHORIZED, None)
    p.start_operation(Operation.CAPTURE, AT)
    assert p.finish_operation(Operation.CAPTURE, 700, Outcome.SUCCEEDED, AT) is (
        PaymentStatus.AUTHORIZED
    )
    assert (p.status, p.amount_captured) == (PaymentStatus.CAPTURED, 700)
    with pytest.raises(InternalError):
        p.finish_operation(Operation.REFUND, 0, Outcome.SUCCEEDED, AT)


def test_refunds_move_through_their_state_machine() -> None:
    p, r = captured(), refund(400)
    p.reserve_refund(400, AT)
    assert settle_refund(p, r, Outcome.SUCCEEDED, AT) == (RefundStatus.PENDING, None)
    assert (r.status, p.amount_refunded, p.amount_refund_pending) == (
        RefundStatus.SUCCEEDED,
        400,
        0,
    )
    with pytest.raises(InvalidState, match="This refund's status is 'succeeded'"):
        settle_refund(p, r, Outcome.SUCCEEDED, AT)  # a refund is settled once
    with pytest.raises(InvalidState):
        check_refund_transition(RefundStatus.FAILED, RefundStatus.SUCCEEDED)
    rest = refund(600)
    p.reserve_refund(600, AT)
    assert settle_refund(p, rest, Outcome.SUCCEEDED, AT).payment_was is PaymentStatus.CAPTURED
    assert p.status is PaymentStatus.REFUNDED


def test_a_failed_refund_gives_back_what_it_reserved() -> None:
    p, r = captured(), refund(1_000)
    p.reserve_refund(1_000, AT)
    settle_refund(p, r, Outcome.DECLINED, AT)
    assert (r.status, p.amount_refunded, p.amount_refund_pending, p.status) == (
        RefundStatus.FAILED,
        0,
        0,
        PaymentStatus.CAPTURED,
    )


@given(st.integers(min_value=1, max_value=10**12))
def test_capture_and_refund_transfers_are_opposite_and_balanced(amount: int) -> None:
    p = captured()
    p.amount = p.amount_captured = amount
    r = refund(amount)
    there, back = capture_transfer(p), refund_transfer(p, r)
    assert net_by_currency(postings_of([there, back])) == {"eur": 0}
    assert (there.debit, there.credit) == (back.credit, back.debit)
    assert (there.id, back.id) == ("pay_1:capture", "rfd_1:refund")


def test_records_name_the_change() -> None:
    p = captured()
    entry = payment_entry(p, PaymentStatus.PENDING, "system:janitor", APPROVED)
    assert (entry.from_status, entry.to_status, entry.amount, entry.actor) == (
        "pending",
        "captured",
        1_000,
        "system:janitor",
    )
    assert entry.connector_result == APPROVED.as_log()
    assert refund_entry(refund(), None, "a", None).from_status is None
    event = payment_event(p, payment_json(p), AT + timedelta(seconds=1))
    assert (event.type, event.object_id, event.data) == (
        "payment.captured",
        "pay_1",
        {"object": payment_json(p)},
    )
    assert event.id.startswith("evt_")


def test_the_representation_and_the_stored_bytes() -> None:
    p = captured()
    shown = payment_json(p)
    assert list(shown) == [
        "id",
        "object",
        "status",
        "amount",
        "currency",
        "amount_captured",
        "amount_refunded",
        "card",
        "token",
        "auth_code",
        "network_reference",
        "decline_code",
        "connector",
        "routing",
        "risk",
        "reference",
        "metadata",
        "created",
        "authorized",
        "captured",
    ]
    assert shown["card"]["last4"] == "4242" and "number" not in shown["card"]
    body = stored_response_body(shown)
    assert body.startswith(b'{"id":"pay_1","object":"payment","status":"captured",')
    assert b'"metadata":{"k":"\\u00fc"}' in body  # ASCII-escaped, as always stored
    assert json.loads(body) == shown
    assert refund_json(refund())["payment"] == "pay_1"
    event = Event("evt_1", "mer_1", "refund.failed", "rfd_1", {"object": {}}, AT)
    assert event_json(event) == {
        "id": "evt_1",
        "object": "event",
        "type": "refund.failed",
        "created": int(AT.timestamp()),
        "data": {"object": {}},
    }


def test_an_attempt_is_the_reference_the_connector_gets() -> None:
    p = payment()
    attempt = new_attempt(p, Operation.REFUND, 400, AT, refund_id="rfd_1")
    assert attempt.id.startswith("att_")
    assert (attempt.payment_id, attempt.connector, attempt.refund_id) == ("pay_1", "fake", "rfd_1")
