"""The janitor: attempts whose answer never came, and authorizations past their window.

No transaction or row lock is held while a connector is called (docs/decisions/0304): the work
is chosen and committed first, each connector is asked, and each answer is written in a short
transaction of its own, only if its attempt is still pending. So two janitors (or a janitor and
the request path) may ask about the same attempt, but only one of them writes its answer. How a
lost answer is settled, for every connector alike, is `payments.lost`.
"""

from __future__ import annotations

from datetime import timedelta

from clearport.connectors.domain import ConnectorResult, ConnectorStatus
from clearport.core.clock import Clock
from clearport.core.uow import UnitOfWork
from clearport.payments.attempts import Attempt, new_attempt
from clearport.payments.calls import ConnectorCalls
from clearport.payments.domain import Operation, Outcome, Payment, PaymentStatus, outcome_of
from clearport.payments.lost import JANITOR, LostCalls
from clearport.payments.outcomes import OutcomeWriter
from clearport.payments.ports import PaymentStore


class Janitor:
    def __init__(
        self,
        uow: UnitOfWork,
        store: PaymentStore,
        calls: ConnectorCalls,
        writer: OutcomeWriter,
        lost: LostCalls,
        clock: Clock,
        *,
        grace_s: int,
        authorization_window_s: int,
    ) -> None:
        self._uow = uow
        self._store = store
        self._calls = calls
        self._writer = writer
        self._lost = lost
        self._clock = clock
        self.grace_s = grace_s
        self._authorization_window_s = authorization_window_s

    async def resolve_pending(self, limit: int) -> int:
        """Settle attempts pending longer than the grace period (`payments.lost`). Returns how
        many answers this janitor wrote."""
        now = self._clock.now()
        older_than = now - timedelta(seconds=self.grace_s)
        async with self._uow.autocommit() as tx:
            attempts = await self._store.pending_attempts(tx, older_than, now, limit)
        resolved = 0
        for attempt in attempts:
            if await self._lost.settle(attempt):
                resolved += 1
        return resolved

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
            connector = await self._calls.get(payment.connector)
            result = (
                self._calls.missing()
                if connector is None
                else await connector.void(attempt.id, payment.auth_attempt_id)
            )
            if (
                outcome_of(result) is Outcome.UNKNOWN
                or result.status is ConnectorStatus.UNREACHABLE
            ):
                # No answer: the processor may have voided. Written failed, the authorization
                # would stand here while its hold is gone there (found by the money simulation,
                # seed 56); pending, `resolve_pending` sends the void again under its reference.
                await self._lost.postpone(attempt)
                continue
            if outcome_of(result) is not Outcome.SUCCEEDED:
                result = ConnectorResult(status=ConnectorStatus.ERROR)
            async with self._uow.transaction() as tx:
                current, written = await self._writer.operation(tx, attempt, result, JANITOR, [])
            if written and current.status is PaymentStatus.EXPIRED:
                expired += 1
        return expired
