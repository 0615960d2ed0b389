"""Writing a connector's answer, for the request path and the janitor alike.

Each method runs in the caller's transaction and writes the answer only if its attempt is still
pending (`UPDATE … WHERE status = 'pending'`): whoever writes first, the request or a janitor,
decides, and the other one reads what was decided. Ledger transfers are collected in `postings`
and posted by `post`, last (docs/decisions/0301).
"""

from __future__ import annotations

from clearport.connectors.domain import ConnectorResult
from clearport.core.clock import Clock
from clearport.core.errors import InternalError, invariant, present
from clearport.core.uow import Transaction
from clearport.events.ports import EventStore
from clearport.idempotency.domain import StoredResponse
from clearport.idempotency.service import IdempotencyClaim, IdempotencyService
from clearport.ledger.domain import TransferRequest
from clearport.ledger.service import LedgerService
from clearport.payments.attempts import Attempt
from clearport.payments.domain import (
    Operation,
    Outcome,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    after_authorization,
    outcome_of,
    settle_refund,
)
from clearport.payments.ports import PaymentStore, Representation
from clearport.payments.records import (
    capture_transfer,
    payment_entry,
    payment_event,
    refund_entry,
    refund_event,
    refund_transfer,
)
from clearport.txlog.ports import TxlogStore


class OutcomeWriter:
    def __init__(
        self,
        store: PaymentStore,
        events: EventStore,
        txlog: TxlogStore,
        ledger: LedgerService,
        idempotency: IdempotencyService,
        shown: Representation,
        clock: Clock,
    ) -> None:
        self._store = store
        self._events = events
        self._txlog = txlog
        self._ledger = ledger
        self._idempotency = idempotency
        self._shown = shown
        self._clock = clock

    async def authorization(
        self,
        tx: Transaction,
        payment: Payment,
        attempt: Attempt,
        result: ConnectorResult,
        actor: str,
        postings: list[TransferRequest],
        *,
        storing: IdempotencyClaim | None = None,
    ) -> tuple[Payment, bool]:
        """The payment after its authorization's answer, and whether this call wrote it. An
        unknown outcome writes nothing. With `storing`, the same statement stores the response
        under that claim."""
        outcome = outcome_of(result)
        if outcome is Outcome.UNKNOWN:
            return payment, False
        now = self._clock.now()
        attempt.complete(outcome, result, now)
        updated = after_authorization(payment, outcome, result, now)
        shown = self._shown.payment(updated)
        response = None
        if storing is not None:
            body = self._shown.response_body(shown)
            response = StoredResponse(storing.scope, storing.key, 201, body)
        done = await self._store.finish_authorization(
            tx,
            attempt,
            updated,
            payment_entry(updated, payment.status, actor, result),
            payment_event(updated, shown, now),
            response,
        )
        if not done:
            # The janitor (or the request) resolved it first: answer with what it decided.
            current = await self._store.get_payment(tx, payment.id)
            if current is None:
                raise InternalError("payment vanished")
            return current, False
        if storing is not None:
            storing.completed_in_transaction = True
        if updated.status is PaymentStatus.CAPTURED:
            postings.append(capture_transfer(updated))
        return updated, True

    async def operation(
        self,
        tx: Transaction,
        attempt: Attempt,
        result: ConnectorResult,
        actor: str,
        postings: list[TransferRequest],
    ) -> tuple[Payment, bool]:
        """The payment after a capture, void or expiry's answer, and whether this call wrote
        it. Anything but success leaves the payment as it was, the operation's marker cleared."""
        outcome = outcome_of(result)
        invariant(outcome is not Outcome.UNKNOWN, "an unknown answer is not written")
        now = self._clock.now()
        attempt.complete(outcome, result, now)
        written = await self._store.complete_attempt(tx, attempt)
        payment = await self._store.get_payment(tx, attempt.payment_id, for_update=True)
        if payment is None:
            raise InternalError("payment vanished")
        if not written:
            return payment, False
        previous = payment.finish_operation(attempt.operation, attempt.amount, outcome, now)
        await self._store.update_payment(tx, payment)
        if previous is None:
            return payment, True
        if attempt.operation is Operation.CAPTURE:
            postings.append(capture_transfer(payment))
        await self._txlog.append(tx, [payment_entry(payment, previous, actor, result)])
        await self._events.insert(tx, [payment_event(payment, self._shown.payment(payment), now)])
        return payment, True

    async def refund(
        self,
        tx: Transaction,
        attempt: Attempt,
        result: ConnectorResult,
        actor: str,
        postings: list[TransferRequest],
    ) -> tuple[Refund, bool]:
        """The refund after its answer, and whether this call wrote it (the payment too: what
        is refunded, and `refunded` once nothing is left)."""
        outcome = outcome_of(result)
        invariant(outcome is not Outcome.UNKNOWN, "an unknown answer is not written")
        now = self._clock.now()
        attempt.complete(outcome, result, now)
        refund_id = present(attempt.refund_id, "a refund attempt names its refund")
        written = await self._store.complete_attempt(tx, attempt)
        payment = await self._store.get_payment(tx, attempt.payment_id, for_update=True)
        refund = await self._store.get_refund(tx, refund_id, for_update=True)
        if payment is None or refund is None:
            raise InternalError("refund or payment vanished")
        if not written:
            return refund, False
        settled = settle_refund(payment, refund, outcome, now)
        entries = [refund_entry(refund, settled.refund_was, actor, result)]
        events = [refund_event(refund, self._shown.refund(refund), now)]
        if refund.status is RefundStatus.SUCCEEDED:
            postings.append(refund_transfer(payment, refund))
        if settled.payment_was is not None:
            entries.append(payment_entry(payment, settled.payment_was, actor, None))
            events.append(payment_event(payment, self._shown.payment(payment), now))
        await self._store.update_refund(tx, refund)
        await self._store.update_payment(tx, payment)
        await self._txlog.append(tx, entries)
        await self._events.insert(tx, events)
        return refund, True

    async def respond(
        self, tx: Transaction, claim: IdempotencyClaim | None, status: int, obj: Payment | Refund
    ) -> None:
        """Store the response to the request under `claim` (if any) in the caller's
        transaction, atomically with what it answers for."""
        if claim is None:
            return
        shown = self._shown.payment(obj) if isinstance(obj, Payment) else self._shown.refund(obj)
        await self._idempotency.complete_in(tx, claim, status, self._shown.response_body(shown))

    async def post(self, tx: Transaction, postings: list[TransferRequest]) -> None:
        """Post last, just before COMMIT: the platform's processor-receivable account is hot,
        and its row stays locked from the post to the commit (docs/decisions/0301)."""
        if postings:
            await self._ledger.post(tx, postings)
