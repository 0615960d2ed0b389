"""The authorization's second half, after the pending payment commits (docs/design.md "The
authorization path", steps 6 and 7): call the chosen connector, fail over to the next candidate
on a technical failure (never on a decline), and write the answer.

Failover (decision 0501): on a technical failure (a processing error, a timeout, a refused
connection, an open breaker) the payment moves to the next candidate in one more write: the
failed attempt, its reversal if the call may have reached the processor, the next attempt, the
payment pointing at it and `routing.failover` saying why. The reversal is sent while the next
connector is asked; a timed-out authorization is never left standing.

The answer (decision 0912): an authorization whose outcome is known and that moves no money is
ONE statement that also stores the idempotent response, in a block whose statements may share a
commit with other requests' (group commit); a sale (it posts to the ledger) or a failure to
reverse takes a transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any

import structlog

from clearport.access.domain import Principal
from clearport.connectors.domain import ConnectorCard, ConnectorResult
from clearport.core.clock import Clock
from clearport.core.errors import InternalError, present
from clearport.core.uow import Transaction, UnitOfWork
from clearport.idempotency.service import IdempotencyClaim
from clearport.ledger.domain import TransferRequest
from clearport.payments.attempts import Attempt, new_attempt, new_reversal
from clearport.payments.calls import ConnectorCalls
from clearport.payments.domain import (
    Operation,
    Outcome,
    Payment,
    PaymentStatus,
    authorization_target,
    next_candidate,
    outcome_of,
)
from clearport.payments.lost import LostCalls, failed
from clearport.payments.outcomes import OutcomeWriter
from clearport.payments.ports import PaymentStore

log = structlog.get_logger("clearport.payments")


class AuthorizationCalls:
    """Connector calls, failover and the answer's write for a payment already pending."""

    def __init__(
        self,
        uow: UnitOfWork,
        store: PaymentStore,
        calls: ConnectorCalls,
        writer: OutcomeWriter,
        lost: LostCalls,
        clock: Clock,
        grouped: Callable[[], AbstractAsyncContextManager[Transaction]],
    ) -> None:
        self._uow = uow
        self._store = store
        self._calls = calls
        self._writer = writer
        self._lost = lost
        self._clock = clock
        # Where the answer's one statement goes: a block whose statements may share a commit
        # with other requests' (group commit, decision 0912), or else autocommit.
        self._grouped = grouped

    async def authorize(
        self,
        principal: Principal,
        payment: Payment,
        attempt: Attempt,
        card: ConnectorCard,
        claim: IdempotencyClaim | None,
        reversals: list[asyncio.Task[bool]],
    ) -> Payment:
        """Call the chosen connector; on a technical failure, fail over to the next candidate
        (never on a decline), reversing a call that may have reached the processor."""
        while True:
            connector = await self._calls.get(attempt.connector)
            result = (
                self._calls.missing()
                if connector is None
                else await connector.authorize(
                    attempt.id,
                    payment.amount,
                    payment.currency,
                    card,
                    capture=payment.capture_requested,
                )
            )
            outcome = outcome_of(result)
            if outcome in (Outcome.SUCCEEDED, Outcome.DECLINED):
                current, _ = await self._finish(principal, payment, attempt, result, claim, None)
                return current
            # A technical failure. One that may have reached the processor is reversed.
            answer = failed(result)
            reversal = (
                new_reversal(attempt, self._clock.now()) if outcome is Outcome.UNKNOWN else None
            )
            code = present(answer.decline_code, "a failure has a decline code")
            following, routing = next_candidate(
                payment.routing, attempt.connector, code, self._calls.allows
            )
            if following is None:
                current, written = await self._finish(
                    principal, payment, attempt, answer, claim, reversal
                )
                if written and reversal is not None and connector is not None:
                    reversals.append(asyncio.create_task(self._lost.reverse(reversal, connector)))
                return current
            moved = await self._fail_over(payment, attempt, answer, reversal, following, routing)
            if moved is None:  # the janitor decided meanwhile: its answer stands
                return await self.current(payment.id, claim)
            if reversal is not None and connector is not None:
                reversals.append(asyncio.create_task(self._lost.reverse(reversal, connector)))
            payment, attempt = moved

    async def _fail_over(
        self,
        payment: Payment,
        attempt: Attempt,
        answer: ConnectorResult,
        reversal: Attempt | None,
        following: str,
        routing: dict[str, Any],
    ) -> tuple[Payment, Attempt] | None:
        """One transaction: this attempt failed, its reversal pending (if any), the next
        connector's attempt pending and the payment pointing at it. None if the attempt was no
        longer pending."""
        now = self._clock.now()
        attempt.complete(Outcome.FAILED, answer, now)
        moved = replace(payment, connector=following, routing=routing, updated_at=now)
        next_attempt = new_attempt(moved, Operation.AUTHORIZE, moved.amount, now)
        moved.auth_attempt_id = next_attempt.id
        async with self._uow.transaction() as tx:
            if not await self._store.complete_attempt(tx, attempt):
                return None
            if reversal is not None:
                await self._store.insert_attempt(tx, reversal)
            await self._store.insert_attempt(tx, next_attempt)
            await self._store.update_payment(tx, moved)
        log.info(
            "payment_failover",
            payment=payment.id,
            failed=attempt.connector,
            decline_code=answer.decline_code,
            to=following,
        )
        return moved, next_attempt

    async def _finish(
        self,
        principal: Principal,
        payment: Payment,
        attempt: Attempt,
        result: ConnectorResult,
        claim: IdempotencyClaim | None,
        reversal: Attempt | None,
    ) -> tuple[Payment, bool]:
        """The second durable write: the answer, and a reversal to send if it needs one; the
        payment, and whether this wrote it (else the janitor decided first)."""
        outcome = outcome_of(result)
        # The common case, an answer that moves no money, is one statement of its own.
        alone = (
            reversal is None
            and outcome is not Outcome.UNKNOWN
            and authorization_target(outcome, capture=payment.capture_requested)
            is not PaymentStatus.CAPTURED
        )
        block = self._grouped() if alone else self._uow.transaction()
        async with block as tx:
            postings: list[TransferRequest] = []
            current, written = await self._writer.authorization(
                tx,
                payment,
                attempt,
                result,
                principal.actor,
                postings,
                storing=claim if alone else None,
            )
            if reversal is not None and written:
                await self._store.insert_attempt(tx, reversal)
            if claim is not None and not claim.completed_in_transaction:
                await self._writer.respond(tx, claim, 201, current)
            await self._writer.post(tx, postings)
        return current, written

    async def current(self, payment_id: str, claim: IdempotencyClaim | None) -> Payment:
        """The payment as someone else decided it, answered under `claim`."""
        async with self._uow.transaction() as tx:
            current = await self._store.get_payment(tx, payment_id)
            if current is None:
                raise InternalError("payment vanished")
            await self._writer.respond(tx, claim, 201, current)
        return current
