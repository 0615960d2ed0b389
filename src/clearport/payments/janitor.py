"""The janitor: attempts whose answer never arrived, and authorizations past their window.

No transaction or row lock is held while a connector is called (docs/decisions/0304): the work
is chosen and committed first, each connector is asked, and each answer is written in a short
transaction of its own, only if its attempt is still pending. So two janitors (or a janitor and
the request path) may ask about the same attempt, but only one of them writes its answer.
"""

from __future__ import annotations

from datetime import timedelta

from clearport.connectors.domain import ConnectorResult, ConnectorStatus
from clearport.connectors.ports import Connector
from clearport.core.clock import Clock
from clearport.core.ids import new_id
from clearport.core.uow import UnitOfWork
from clearport.ledger.domain import TransferRequest
from clearport.payments.calls import ConnectorCalls
from clearport.payments.domain import (
    Attempt,
    Operation,
    Outcome,
    Payment,
    PaymentStatus,
    new_attempt,
    outcome_of,
)
from clearport.payments.outcomes import OutcomeWriter
from clearport.payments.ports import PaymentStore

JANITOR = "system:janitor"


class Janitor:
    def __init__(
        self,
        uow: UnitOfWork,
        store: PaymentStore,
        calls: ConnectorCalls,
        writer: OutcomeWriter,
        clock: Clock,
        *,
        grace_s: int,
        authorization_window_s: int,
    ) -> None:
        self._uow = uow
        self._store = store
        self._calls = calls
        self._writer = writer
        self._clock = clock
        self.grace_s = grace_s
        self._authorization_window_s = authorization_window_s

    async def resolve_pending(self, limit: int) -> int:
        """Ask the connector, by our reference, about attempts pending longer than the grace
        period, and write what it says. Returns how many answers this janitor wrote."""
        older_than = self._clock.now() - timedelta(seconds=self.grace_s)
        async with self._uow.autocommit() as tx:
            attempts = await self._store.pending_attempts(tx, older_than, limit)
        resolved = 0
        for attempt in attempts:
            connector = self._calls[attempt.connector]
            result = await self._calls.call("status", connector.status(attempt.id))
            if await self._resolve(connector, attempt, result):
                resolved += 1
        return resolved

    async def _resolve(
        self, connector: Connector, attempt: Attempt, result: ConnectorResult
    ) -> bool:
        approved = result.status is ConnectorStatus.APPROVED
        known = approved or result.status is ConnectorStatus.DECLINED
        if attempt.operation is Operation.AUTHORIZE and not known:
            # Unknown at the processor (or an error): fail the payment, then release anything
            # the processor may hold. In this order, a janitor that learnt of an approval and
            # wrote it first is never undone by a void from one that learnt nothing.
            failed = ConnectorResult(
                status=ConnectorStatus.ERROR,
                response_code=result.response_code or "96",
                decline_code="processing_error",
            )
            if await self._write(attempt, failed):
                await self._calls.call("void", connector.void(new_id("att"), attempt.id))
                return True
            return False
        if attempt.operation is Operation.AUTHORIZE:
            return await self._write(attempt, result)
        return await self._write(
            attempt, result if approved else ConnectorResult(status=ConnectorStatus.ERROR)
        )

    async def _write(self, attempt: Attempt, answer: ConnectorResult) -> bool:
        """Write one answer in its own transaction; False if someone else wrote first."""
        async with self._uow.transaction() as tx:
            postings: list[TransferRequest] = []
            match attempt.operation:
                case Operation.AUTHORIZE:
                    # Not locked here: the statement locks the attempt, then the payment, in
                    # the request path's order. Already decided: nothing left to write.
                    payment = await self._store.get_payment(tx, attempt.payment_id)
                    if payment is None or payment.status is not PaymentStatus.PENDING:
                        return False
                    _, written = await self._writer.authorization(
                        tx, payment, attempt, answer, JANITOR, postings
                    )
                case Operation.CAPTURE | Operation.VOID | Operation.EXPIRE:
                    _, written = await self._writer.operation(
                        tx, attempt, answer, JANITOR, postings
                    )
                case Operation.REFUND:
                    _, written = await self._writer.refund(tx, attempt, answer, JANITOR, postings)
            await self._writer.post(tx, postings)
        return written

    async def expire_authorizations(self, limit: int) -> int:
        """Void authorizations older than the window at the connector and mark them expired.
        Returns how many this janitor expired."""
        now = self._clock.now()
        before = now - timedelta(seconds=self._authorization_window_s)
        claimed: list[tuple[Payment, Attempt]] = []
        async with self._uow.transaction() as tx:
            for payment in await self._store.claim_expirable(tx, before, limit):
                attempt = new_attempt(payment, Operation.EXPIRE, 0, now)
                payment.start_operation(Operation.EXPIRE, now)
                await self._store.insert_attempt(tx, attempt)
                await self._store.update_payment(tx, payment)
                claimed.append((payment, attempt))
        # Committed: the marker refuses a capture or void (and another janitor) meanwhile; a
        # crash from here on leaves pending expiry attempts that `resolve_pending` resolves.
        expired = 0
        for payment, attempt in claimed:
            result = await self._calls.call(
                "void",
                self._calls[payment.connector].void(attempt.id, payment.auth_attempt_id),
            )
            if outcome_of(result) is not Outcome.SUCCEEDED:
                result = ConnectorResult(status=ConnectorStatus.ERROR)
            async with self._uow.transaction() as tx:
                current, written = await self._writer.operation(tx, attempt, result, JANITOR, [])
            if written and current.status is PaymentStatus.EXPIRED:
                expired += 1
        return expired
