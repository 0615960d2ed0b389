"""Calls whose answer never came, settled: for the janitor, and reversals for the request path.

One rule for every connector (decision 0501). To settle an attempt still pending:

1. Ask, where the connector can (`inquires`: the HTTP acquirer's status inquiry by our
   reference). An approval, a decline or a technical refusal is the answer: written as if it
   had come in time.
2. Otherwise — no inquiry (ISO 8583), nothing on record, no answer to the inquiry — the call is
   failed and reversed, in this order: ONE transaction writes the attempt `failed` (only if it
   is still pending) and a pending `reverse` attempt; only if that write won is the reversal
   sent. So a janitor that learnt nothing never reverses an approval someone else has just
   recorded, and a reversal is never lost: until the processor acknowledges it, the pending
   reversal is sent again (the same reference: the processor answers a repeat as the first).
3. A void or an expiry is sent again under its own reference (repeating a void is harmless).

What cannot be settled now (the connector unreachable, its breaker open, not configured in
this process) is postponed: `tries` counts, `retry_at` doubles from `RETRY_FIRST_S` to
`RETRY_MAX_S`, so a dead host costs the janitor one call per attempt per interval, and newer
attempts are not starved.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from clearport.connectors.domain import ConnectorResult, ConnectorStatus, Failure
from clearport.connectors.ports import Connector
from clearport.core.clock import Clock
from clearport.core.errors import present
from clearport.core.uow import Transaction, UnitOfWork
from clearport.ledger.domain import TransferRequest
from clearport.payments.attempts import Attempt, new_reversal
from clearport.payments.calls import ConnectorCalls
from clearport.payments.domain import Operation, Outcome, PaymentStatus, outcome_of
from clearport.payments.outcomes import OutcomeWriter
from clearport.payments.ports import PaymentStore

log = structlog.get_logger("clearport.payments")

JANITOR = "system:janitor"
RETRY_FIRST_S = 10
RETRY_MAX_S = 3_600
_SETTLED = frozenset({ConnectorStatus.APPROVED, ConnectorStatus.DECLINED, ConnectorStatus.ERROR})


def retry_delay_s(tries: int) -> int:
    return int(min(RETRY_FIRST_S * 2 ** min(max(tries, 0), 20), RETRY_MAX_S))


def failed(result: ConnectorResult | None) -> ConnectorResult:
    """A call that failed for a technical reason, keeping what we know of why."""
    code = (
        result.decline_code
        if result is not None and result.decline_code in {str(f) for f in Failure}
        else str(Failure.PROCESSING_ERROR)
    )
    return ConnectorResult(
        status=ConnectorStatus.ERROR,
        response_code=None if result is None else result.response_code,
        decline_code=code,
    )


class LostCalls:
    def __init__(
        self,
        uow: UnitOfWork,
        store: PaymentStore,
        calls: ConnectorCalls,
        writer: OutcomeWriter,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._store = store
        self._calls = calls
        self._writer = writer
        self._clock = clock

    async def settle(self, attempt: Attempt) -> bool:
        """Settle one pending attempt; True if this call wrote its answer."""
        connector = await self._calls.get(attempt.connector)
        if connector is None:
            log.warning("connector_missing", connector=attempt.connector, attempt=attempt.id)
            await self.postpone(attempt)
            return False
        match attempt.operation:
            case Operation.REVERSE:
                return await self.reverse(attempt, connector)
            case Operation.VOID | Operation.EXPIRE:
                return await self._void_again(attempt, connector)
            case Operation.AUTHORIZE | Operation.CAPTURE | Operation.REFUND:
                asked = await connector.status(attempt.id) if connector.inquires else None
                if asked is not None and asked.status in _SETTLED:
                    return await self._write(attempt, asked)
                reversal = await self.fail_and_reverse(attempt, failed(asked))
                if reversal is None:
                    return False
                await self.reverse(reversal, connector)
                return True

    async def fail_and_reverse(self, attempt: Attempt, answer: ConnectorResult) -> Attempt | None:
        """Write `attempt` failed and a pending reversal of it, in one transaction; the
        reversal, or None if the attempt was no longer pending (someone else decided)."""
        reversal = new_reversal(attempt, self._clock.now())
        async with self._uow.transaction() as tx:
            postings: list[TransferRequest] = []
            if not await self._write_in(tx, attempt, answer, postings):
                return None
            await self._store.insert_attempt(tx, reversal)
            await self._writer.post(tx, postings)
        return reversal

    async def reverse(self, reversal: Attempt, connector: Connector) -> bool:
        """Send a pending reversal; True once the processor acknowledged it (and it is written),
        else it is postponed."""
        original = present(reversal.reverses, "a reversal names what it reverses")
        result = await connector.reverse(reversal.id, original, reversal.amount, reversal.currency)
        if result.status is not ConnectorStatus.APPROVED:
            await self.postpone(reversal)
            return False
        reversal.complete(Outcome.SUCCEEDED, result, self._clock.now())
        async with self._uow.autocommit() as tx:
            return await self._store.complete_attempt(tx, reversal)

    async def postpone(self, attempt: Attempt) -> None:
        retry_at = self._clock.now() + timedelta(seconds=retry_delay_s(attempt.tries))
        async with self._uow.autocommit() as tx:
            await self._store.postpone_attempt(tx, attempt.id, retry_at)

    async def _void_again(self, attempt: Attempt, connector: Connector) -> bool:
        async with self._uow.autocommit() as tx:
            payment = await self._store.get_payment(tx, attempt.payment_id)
        if payment is None:
            return False
        result = await connector.void(attempt.id, payment.auth_attempt_id)
        if outcome_of(result) is Outcome.UNKNOWN or result.status is ConnectorStatus.UNREACHABLE:
            await self.postpone(attempt)
            return False
        return await self._write(attempt, result)

    async def _write(self, attempt: Attempt, answer: ConnectorResult) -> bool:
        """Write one answer in its own transaction; False if someone else wrote first."""
        async with self._uow.transaction() as tx:
            postings: list[TransferRequest] = []
            written = await self._write_in(tx, attempt, answer, postings)
            await self._writer.post(tx, postings)
        return written

    async def _write_in(
        self,
        tx: Transaction,
        attempt: Attempt,
        answer: ConnectorResult,
        postings: list[TransferRequest],
    ) -> bool:
        match attempt.operation:
            case Operation.AUTHORIZE:
                # Not locked here: the statement locks the attempt, then the payment, in the
                # request path's order. Already decided: nothing left to write.
                payment = await self._store.get_payment(tx, attempt.payment_id)
                if payment is None or payment.status is not PaymentStatus.PENDING:
                    return False
                if payment.auth_attempt_id != attempt.id:
                    # An attempt the request path failed over from: its own row only.
                    attempt.complete(outcome_of(answer), answer, self._clock.now())
                    return await self._store.complete_attempt(tx, attempt)
                _, written = await self._writer.authorization(
                    tx, payment, attempt, answer, JANITOR, postings
                )
            case Operation.CAPTURE | Operation.VOID | Operation.EXPIRE:
                _, written = await self._writer.operation(tx, attempt, answer, JANITOR, postings)
            case Operation.REFUND:
                _, written = await self._writer.refund(tx, attempt, answer, JANITOR, postings)
            case Operation.REVERSE:
                attempt.complete(outcome_of(answer), answer, self._clock.now())
                written = await self._store.complete_attempt(tx, attempt)
        return written
