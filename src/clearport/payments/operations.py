"""Capture, void and refund an authorized or captured payment.

Each follows the three steps of docs/decisions/0300: one transaction checks the payment, records
the attempt as pending (a capture or void also sets the payment's `pending_operation` marker, a
refund counts as pending against what is left to refund) and COMMITS; the connector is called;
one transaction writes the answer (`OutcomeWriter`). A refused capture or void, or one whose
answer never came, is a `ConnectorFailed`; a refused refund is a refund that `failed`.
"""

from __future__ import annotations

from clearport.access.domain import Principal
from clearport.connectors.domain import ConnectorResult, ConnectorStatus
from clearport.core.clock import Clock
from clearport.core.errors import (
    ConnectorFailed,
    IdempotencyInProgress,
    InternalError,
    InvalidState,
    NotFound,
)
from clearport.core.ids import new_id
from clearport.core.uow import UnitOfWork
from clearport.idempotency.service import IdempotencyClaim, IdempotencyService
from clearport.ledger.domain import TransferRequest
from clearport.payments.attempts import Attempt, new_attempt
from clearport.payments.calls import ConnectorCalls
from clearport.payments.domain import (
    Operation,
    Outcome,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    capture_amount,
    outcome_of,
    refund_amount,
    require_status,
)
from clearport.payments.outcomes import OutcomeWriter
from clearport.payments.ports import PaymentStore
from clearport.payments.records import refund_entry
from clearport.txlog.ports import TxlogStore


class Operations:
    def __init__(
        self,
        uow: UnitOfWork,
        store: PaymentStore,
        txlog: TxlogStore,
        idempotency: IdempotencyService,
        calls: ConnectorCalls,
        writer: OutcomeWriter,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._store = store
        self._txlog = txlog
        self._idempotency = idempotency
        self._calls = calls
        self._writer = writer
        self._clock = clock

    async def capture(
        self,
        principal: Principal,
        payment_id: str,
        amount: int | None,
        claim: IdempotencyClaim | None,
    ) -> Payment:
        payment, attempt = await self._begin(
            principal, payment_id, Operation.CAPTURE, amount, claim
        )
        connector = await self._calls.get(payment.connector)
        result = (
            self._calls.missing()
            if connector is None
            else await connector.capture(
                attempt.id, payment.auth_attempt_id, attempt.amount, payment.currency
            )
        )
        return await self._finish(attempt, result, principal.actor, claim)

    async def void(
        self, principal: Principal, payment_id: str, claim: IdempotencyClaim | None
    ) -> Payment:
        payment, attempt = await self._begin(principal, payment_id, Operation.VOID, None, claim)
        connector = await self._calls.get(payment.connector)
        result = (
            self._calls.missing()
            if connector is None
            else await connector.void(attempt.id, payment.auth_attempt_id)
        )
        return await self._finish(attempt, result, principal.actor, claim)

    async def _begin(
        self,
        principal: Principal,
        payment_id: str,
        operation: Operation,
        amount: int | None,
        claim: IdempotencyClaim | None,
    ) -> tuple[Payment, Attempt]:
        merchant_id = principal.require_merchant()
        try:
            async with self._uow.transaction() as tx:
                if claim is not None:
                    # First: a deferred claim is made in this commit (decision 0912). A capture
                    # creates nothing a retry could recover, so it binds nothing.
                    await self._idempotency.claim_in(tx, claim, None)
                payment = await self._store.get_payment(
                    tx, payment_id, merchant_id=merchant_id, for_update=True
                )
                if payment is None:
                    raise NotFound(f"No such payment: '{payment_id}'.", field="id")
                verb = "captured" if operation is Operation.CAPTURE else "voided"
                require_status(payment.status, verb, PaymentStatus.AUTHORIZED)
                now = self._clock.now()
                payment.start_operation(operation, now)
                value = (
                    capture_amount(amount, payment.amount) if operation is Operation.CAPTURE else 0
                )
                attempt = new_attempt(payment, operation, value, now)
                await self._store.insert_attempt(tx, attempt)
                await self._store.update_payment(tx, payment)
        except BaseException:
            if claim is not None:
                claim.rolled_back()
            raise
        return payment, attempt

    async def _finish(
        self,
        attempt: Attempt,
        result: ConnectorResult,
        actor: str,
        claim: IdempotencyClaim | None,
    ) -> Payment:
        outcome = outcome_of(result)
        if outcome is Outcome.UNKNOWN:
            raise ConnectorFailed(
                f"The connector did not answer the {attempt.operation}; it will be resolved "
                "automatically.",
                code="connector_timeout",
            )
        async with self._uow.transaction() as tx:
            postings: list[TransferRequest] = []
            payment, _ = await self._writer.operation(tx, attempt, result, actor, postings)
            if outcome is Outcome.SUCCEEDED:
                await self._writer.respond(tx, claim, 200, payment)
            await self._writer.post(tx, postings)
        if result.status is ConnectorStatus.UNREACHABLE:
            raise ConnectorFailed(
                f"The connector could not be reached for the {attempt.operation}; nothing was "
                "sent, retry later.",
                code="connector_unavailable",
            )
        if outcome is not Outcome.SUCCEEDED:
            raise ConnectorFailed(f"The connector refused the {attempt.operation}.")
        return payment

    async def refund(
        self,
        principal: Principal,
        payment_id: str,
        amount: int | None,
        reason: str | None,
        claim: IdempotencyClaim | None,
    ) -> Refund:
        merchant_id = principal.require_merchant()
        if claim is not None and claim.recovered_resource is not None:
            return await self._recover_refund(merchant_id, claim, claim.recovered_resource)
        refund_id = new_id("rfd")
        try:
            async with self._uow.transaction() as tx:
                if claim is not None:
                    # First: a deferred claim is made in this commit, bound to the refund it
                    # creates (an ordinary one is bound to it here), so a retry after a crash
                    # answers with this refund instead of refunding twice (decision 0912).
                    await self._idempotency.claim_in(tx, claim, refund_id)
                payment = await self._store.get_payment(
                    tx, payment_id, merchant_id=merchant_id, for_update=True
                )
                if payment is None:
                    raise NotFound(f"No such payment: '{payment_id}'.", field="id")
                require_status(payment.status, "refunded", PaymentStatus.CAPTURED)
                if payment.amount_disputed:
                    # The cardholder has the money back through the chargeback already (or may
                    # get it): a refund now would pay them twice. Won back, it may be refunded
                    # again.
                    raise InvalidState(
                        "This payment is disputed; it cannot be refunded while a chargeback "
                        "holds its money (GET /v1/disputes?payment=… shows the dispute)."
                    )
                value = refund_amount(
                    amount,
                    payment.amount_captured,
                    payment.amount_refunded + payment.amount_refund_pending,
                )
                now = self._clock.now()
                refund = Refund(
                    id=refund_id,
                    payment_id=payment.id,
                    merchant_id=merchant_id,
                    amount=value,
                    currency=payment.currency,
                    status=RefundStatus.PENDING,
                    reason=reason,
                    attempt_id=new_id("att"),
                    created_at=now,
                    updated_at=now,
                )
                attempt = new_attempt(
                    payment,
                    Operation.REFUND,
                    value,
                    now,
                    attempt_id=refund.attempt_id,
                    refund_id=refund.id,
                )
                payment.reserve_refund(value, now)
                await self._store.insert_refund(tx, refund)
                await self._store.insert_attempt(tx, attempt)
                await self._store.update_payment(tx, payment)
                await self._txlog.append(tx, [refund_entry(refund, None, principal.actor, None)])
        except BaseException:
            if claim is not None:
                claim.rolled_back()
            raise
        connector = await self._calls.get(payment.connector)
        result = (
            self._calls.missing()
            if connector is None
            else await connector.refund(
                attempt.id, payment.auth_attempt_id, value, payment.currency
            )
        )
        async with self._uow.transaction() as tx:
            postings: list[TransferRequest] = []
            current = refund
            if outcome_of(result) is not Outcome.UNKNOWN:
                current, _ = await self._writer.refund(
                    tx, attempt, result, principal.actor, postings
                )
            await self._writer.respond(tx, claim, 201, current)
            await self._writer.post(tx, postings)
        return current

    async def _recover_refund(
        self, merchant_id: str, claim: IdempotencyClaim, refund_id: str
    ) -> Refund:
        """A retry of a refund whose first attempt died after creating it: answer with that
        refund, never refund twice (docs/decisions/0003)."""
        async with self._uow.transaction() as tx:
            refund = await self._store.get_refund(tx, refund_id)
            if refund is None or refund.merchant_id != merchant_id:
                raise InternalError("an idempotency key is bound to a missing refund")
            if refund.status is RefundStatus.PENDING:
                claim.keep_open = True
                raise IdempotencyInProgress(
                    "The first attempt of this request is still being resolved; retry later."
                )
            await self._writer.respond(tx, claim, 201, refund)
        return refund
