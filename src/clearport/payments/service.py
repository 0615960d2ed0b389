"""Payments: authorize, capture, void, refund and sale through a connector.

Every connector call follows the same three steps (docs/decisions/0300):

1. one transaction validates, records the attempt as `pending` and COMMITS;
2. the connector is called, bounded by a timeout (no answer = outcome unknown, never "declined");
3. one transaction writes the status, the attempt's result, the transaction-log entries, the
   ledger transfers (capture, refund), the outbox events and the stored idempotent response.

A crash between 1 and 3 leaves a `pending` attempt that the janitor resolves by asking the
connector. The CVC travels in memory from the request to the one authorization; it is never
written anywhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import structlog

from clearport.access.domain import Permission, Principal
from clearport.connectors.domain import ConnectorCard, ConnectorResult, ConnectorStatus
from clearport.connectors.ports import Connector
from clearport.core.clock import Clock
from clearport.core.errors import (
    ConnectorFailed,
    Field,
    IdempotencyInProgress,
    InternalError,
    InvalidRequest,
    InvalidState,
    NotFound,
    PermissionDenied,
)
from clearport.core.ids import new_id
from clearport.core.money import parse_currency
from clearport.core.pagination import Page, PageRequest
from clearport.core.sensitive import SensitiveStr
from clearport.core.uow import Transaction, UnitOfWork
from clearport.events.domain import Event
from clearport.idempotency.service import IdempotencyClaim, IdempotencyService
from clearport.ledger.domain import AccountKind, AccountRef, TransferRequest
from clearport.ledger.service import LedgerService
from clearport.merchants.domain import MerchantStatus
from clearport.merchants.ports import MerchantRepository
from clearport.payments.domain import (
    EVENT_OF_REFUND,
    EVENT_OF_STATUS,
    Attempt,
    Operation,
    Outcome,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    authorization_target,
    capture_amount,
    outcome_of,
    refund_amount,
    require_status,
    route,
    validate_amount,
)
from clearport.payments.ports import PaymentStore
from clearport.txlog.domain import TxlogEntry
from clearport.vault.cards import CardInput, validate_card, validate_cvc
from clearport.vault.service import StoredCard, VaultService

log = structlog.get_logger("clearport.payments")

JANITOR = "system:janitor"


@dataclass(frozen=True)
class InlineCard:
    card: CardInput
    cvc: SensitiveStr | None


@dataclass(frozen=True)
class TokenSource:
    token: str
    cvc: SensitiveStr | None


@dataclass(frozen=True)
class NewPayment:
    amount: int
    currency: str
    source: InlineCard | TokenSource
    capture: bool
    reference: str | None
    metadata: dict[str, str]


# The stored idempotent response is rendered by the caller (the API) from the final object.
Render = Callable[[dict[str, Any]], bytes]


def _json_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


class PaymentService:
    def __init__(
        self,
        uow: UnitOfWork,
        store: PaymentStore,
        merchants: MerchantRepository,
        vault: VaultService,
        ledger: LedgerService,
        idempotency: IdempotencyService,
        connectors: Mapping[str, Connector],
        clock: Clock,
        *,
        max_amount_minor: int,
        connector_timeout_s: float,
        authorization_window_s: int,
        janitor_grace_s: int,
    ) -> None:
        self._uow = uow
        self._store = store
        self._merchants = merchants
        self._vault = vault
        self._ledger = ledger
        self._idempotency = idempotency
        self._connectors = dict(connectors)
        self._clock = clock
        self.max_amount_minor = max_amount_minor
        self._timeout_s = connector_timeout_s
        self.authorization_window_s = authorization_window_s
        self.janitor_grace_s = janitor_grace_s

    def connector(self, name: str) -> Connector:
        return self._connectors[name]

    # --- calls out, bounded ---------------------------------------------------------------

    async def _call(self, operation: str, call: Any) -> ConnectorResult:
        try:
            result: ConnectorResult = await asyncio.wait_for(call, timeout=self._timeout_s)
            return result
        except TimeoutError:
            log.warning("connector_timeout", operation=operation)
            return ConnectorResult(status=ConnectorStatus.UNKNOWN)
        except Exception as exc:  # a transport error: the processor may have acted
            log.warning("connector_error", operation=operation, error=type(exc).__name__)
            return ConnectorResult(status=ConnectorStatus.UNKNOWN)

    async def _complete(
        self,
        tx: Transaction,
        claim: IdempotencyClaim | None,
        status: int,
        body: dict[str, Any],
    ) -> None:
        if claim is not None:
            await self._idempotency.complete_in(tx, claim, status, _json_bytes(body))

    # --- authorize / sale -------------------------------------------------------------------

    async def create(
        self, principal: Principal, new: NewPayment, claim: IdempotencyClaim | None
    ) -> Payment:
        merchant_id = principal.require_merchant()
        if claim is not None and claim.recovered_resource is not None:
            return await self._recover_payment(merchant_id, claim, claim.recovered_resource)
        validate_amount(new.amount, max_amount_minor=self.max_amount_minor)
        parse_currency(new.currency)
        if isinstance(new.source, InlineCard):
            brand = validate_card(new.source.card, self._today(), field_prefix=("source", "card"))
            if new.source.cvc is not None:
                validate_cvc(new.source.cvc, brand, field=("source", "card", "cvc"))
        routing = route(tuple(self._connectors))
        now = self._clock.now()
        payment_id = new_id("pay")
        attempt_id = new_id("att")
        async with self._uow.transaction() as tx:
            gate = await self._store.merchant_gate(tx, merchant_id)
            if gate is None:
                raise NotFound("No such merchant.")
            merchant_status, require_cvc = gate
            if MerchantStatus(merchant_status) is not MerchantStatus.ACTIVE:
                raise PermissionDenied(
                    f"This merchant is {merchant_status} and cannot create payments.",
                    code="merchant_inactive",
                )
            card_input: CardInput
            stored: StoredCard
            cvc_field: Field
            if isinstance(new.source, InlineCard):
                cvc, cvc_field = new.source.cvc, ("source", "card", "cvc")
                if cvc is None and require_cvc:
                    raise InvalidRequest(
                        "This merchant requires '{field}'.",
                        code="parameter_missing",
                        field=cvc_field,
                    )
                stored = await self._vault.tokenize(tx, merchant_id, new.source.card)
                card_input = new.source.card
            else:
                cvc, cvc_field = new.source.cvc, ("source", "cvc")
                if cvc is None and require_cvc:
                    raise InvalidRequest(
                        "This merchant requires '{field}'.",
                        code="parameter_missing",
                        field=cvc_field,
                    )
                stored = await self._vault.get_card(
                    tx, merchant_id, new.source.token, field=("source", "token")
                )
                if cvc is not None:
                    validate_cvc(cvc, stored.brand, field=cvc_field)
                card_input = await self._vault.reveal_for_connector(
                    tx,
                    merchant_id,
                    new.source.token,
                    payment_id=payment_id,
                    connector=routing.connector,
                )
            payment = Payment(
                id=payment_id,
                merchant_id=merchant_id,
                amount=new.amount,
                currency=new.currency,
                status=PaymentStatus.PENDING,
                capture_requested=new.capture,
                card_brand=stored.brand,
                card_bin=stored.bin,
                card_last4=stored.last4,
                card_exp_month=stored.exp_month,
                card_exp_year=stored.exp_year,
                card_fingerprint=stored.fingerprint,
                token_id=stored.token_id,
                auth_attempt_id=attempt_id,
                connector=routing.connector,
                routing=routing.as_json(),
                reference=new.reference,
                metadata=new.metadata,
                created_at=now,
                updated_at=now,
            )
            attempt = Attempt(
                id=attempt_id,
                payment_id=payment_id,
                merchant_id=merchant_id,
                operation=Operation.AUTHORIZE,
                amount=new.amount,
                currency=new.currency,
                connector=routing.connector,
                created_at=now,
            )
            await self._store.insert_pending(
                tx, payment, attempt, self._entry(payment, None, principal.actor, None)
            )
            if claim is not None:
                await self._idempotency.bind_resource(tx, claim, payment_id)
        # Committed: from here on, a crash leaves a pending attempt the janitor resolves.
        connector_card = ConnectorCard(
            number=card_input.number,
            exp_month=card_input.exp_month,
            exp_year=card_input.exp_year,
            cvc=cvc,
        )
        result = await self._call(
            "authorize",
            self.connector(routing.connector).authorize(
                attempt_id, new.amount, new.currency, connector_card, capture=new.capture
            ),
        )
        del connector_card, cvc
        fast = await self._finish_authorization_alone(payment, attempt, result, principal, claim)
        if fast is not None:
            return fast
        async with self._uow.transaction() as tx:
            postings: list[TransferRequest] = []
            current = await self._finish_authorization(
                tx, payment, attempt, result, principal.actor, postings
            )
            await self._complete(tx, claim, 201, current.to_json())
            await self._post(tx, postings)
        return current

    async def _finish_authorization_alone(
        self,
        payment: Payment,
        attempt: Attempt,
        result: ConnectorResult,
        principal: Principal,
        claim: IdempotencyClaim | None,
    ) -> Payment | None:
        """The common case in one statement (no BEGIN/COMMIT round trips): an authorization
        whose outcome is known and that moves no money. None when the general path must run."""
        outcome = outcome_of(result)
        if outcome is Outcome.UNKNOWN:
            return None
        target = authorization_target(outcome, capture=payment.capture_requested)
        if target is PaymentStatus.CAPTURED:
            return None  # a sale posts to the ledger in the same transaction
        now = self._clock.now()
        attempt.complete(outcome, result, now)
        updated = self._authorized(payment, outcome, result, now)
        response = None
        if claim is not None:
            response = (claim.scope, claim.key, 201, _json_bytes(updated.to_json()))
        done = await self._store.finish_authorization_alone(
            attempt,
            updated,
            self._entry(updated, payment.status, principal.actor, result),
            self._payment_event(updated, now),
            response,
        )
        if not done:
            return None  # someone else resolved it: the general path re-reads and answers
        if claim is not None:
            claim.completed_in_transaction = True
        return updated

    def _authorized(
        self, payment: Payment, outcome: Outcome, result: ConnectorResult, now: datetime
    ) -> Payment:
        updated = replace(payment)
        updated.move_to(authorization_target(outcome, capture=updated.capture_requested), now)
        updated.auth_code = result.auth_code
        updated.network_reference = result.network_reference
        updated.decline_code = result.decline_code
        if outcome is Outcome.SUCCEEDED:
            updated.authorized_at = now
        if updated.status is PaymentStatus.CAPTURED:
            updated.amount_captured = updated.amount
            updated.captured_at = now
        updated.check()
        return updated

    async def _recover_payment(
        self, merchant_id: str, claim: IdempotencyClaim, payment_id: str
    ) -> Payment:
        """A retry of a request whose first attempt died after creating its payment: answer
        with that payment, never authorize a second time (docs/decisions/0003)."""
        async with self._uow.transaction() as tx:
            payment = await self._store.get_payment(tx, payment_id, merchant_id=merchant_id)
            if payment is None:
                raise InternalError("an idempotency key is bound to a missing payment")
            if payment.status is PaymentStatus.PENDING:
                claim.keep_open = True  # the janitor resolves it; a later retry recovers it
                raise IdempotencyInProgress(
                    "The first attempt of this request is still being resolved; retry later."
                )
            await self._complete(tx, claim, 201, payment.to_json())
        return payment

    def _today(self) -> date:
        return self._clock.now().date()

    async def _finish_authorization(
        self,
        tx: Transaction,
        payment: Payment,
        attempt: Attempt,
        result: ConnectorResult,
        actor: str,
        postings: list[TransferRequest],
    ) -> Payment:
        outcome = outcome_of(result)
        if outcome is Outcome.UNKNOWN:
            return payment
        now = self._clock.now()
        attempt.complete(outcome, result, now)
        updated = self._authorized(payment, outcome, result, now)
        target = updated.status
        done = await self._store.finish_authorization(
            tx,
            attempt,
            updated,
            self._entry(updated, payment.status, actor, result),
            self._payment_event(updated, now),
        )
        if not done:
            # The janitor (or the request) resolved it first: answer with what it decided.
            current = await self._store.get_payment(tx, payment.id)
            if current is None:
                raise InternalError("payment vanished")
            return current
        if target is PaymentStatus.CAPTURED:
            postings.append(self._capture_transfer(updated))
        return updated

    # --- capture / void --------------------------------------------------------------------

    async def _begin_operation(
        self,
        principal: Principal,
        payment_id: str,
        operation: Operation,
        amount: int | None,
    ) -> tuple[Payment, Attempt]:
        merchant_id = principal.require_merchant()
        async with self._uow.transaction() as tx:
            payment = await self._store.get_payment(
                tx, payment_id, merchant_id=merchant_id, for_update=True
            )
            if payment is None:
                raise NotFound(f"No such payment: '{payment_id}'.", field="id")
            verb = "captured" if operation is Operation.CAPTURE else "voided"
            require_status(payment.status, verb, PaymentStatus.AUTHORIZED)
            if payment.pending_operation is not None:
                raise InvalidState(
                    f"A {payment.pending_operation} of this payment is in progress; "
                    "retry when it has finished."
                )
            value = capture_amount(amount, payment.amount) if operation is Operation.CAPTURE else 0
            now = self._clock.now()
            attempt = Attempt(
                id=new_id("att"),
                payment_id=payment.id,
                merchant_id=payment.merchant_id,
                operation=operation,
                amount=value,
                currency=payment.currency,
                connector=payment.connector,
                created_at=now,
            )
            payment.pending_operation = str(operation)
            payment.updated_at = now
            await self._store.insert_attempt(tx, attempt)
            await self._store.update_payment(tx, payment)
        return payment, attempt

    async def capture(
        self,
        principal: Principal,
        payment_id: str,
        amount: int | None,
        claim: IdempotencyClaim | None,
    ) -> Payment:
        payment, attempt = await self._begin_operation(
            principal, payment_id, Operation.CAPTURE, amount
        )
        result = await self._call(
            "capture",
            self.connector(payment.connector).capture(
                attempt.id, payment.auth_attempt_id, attempt.amount, payment.currency
            ),
        )
        return await self._finish_request(attempt, result, principal.actor, claim)

    async def void(
        self, principal: Principal, payment_id: str, claim: IdempotencyClaim | None
    ) -> Payment:
        payment, attempt = await self._begin_operation(principal, payment_id, Operation.VOID, None)
        result = await self._call(
            "void", self.connector(payment.connector).void(attempt.id, payment.auth_attempt_id)
        )
        return await self._finish_request(attempt, result, principal.actor, claim)

    async def _finish_request(
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
            payment = await self._finish_operation(tx, attempt, result, actor, postings)
            if outcome is Outcome.SUCCEEDED:
                await self._complete(tx, claim, 200, payment.to_json())
            await self._post(tx, postings)
        if outcome is not Outcome.SUCCEEDED:
            raise ConnectorFailed(f"The connector refused the {attempt.operation}.")
        return payment

    async def _finish_operation(
        self,
        tx: Transaction,
        attempt: Attempt,
        result: ConnectorResult,
        actor: str,
        postings: list[TransferRequest],
    ) -> Payment:
        """Apply a capture/void/expire answer (request path or janitor)."""
        outcome = outcome_of(result)
        now = self._clock.now()
        attempt.complete(outcome, result, now)
        written = await self._store.complete_attempt(tx, attempt)
        payment = await self._store.get_payment(tx, attempt.payment_id, for_update=True)
        if payment is None:
            raise InternalError("payment vanished")
        if not written:
            return payment
        payment.pending_operation = None
        payment.updated_at = now
        if outcome is not Outcome.SUCCEEDED:
            await self._store.update_payment(tx, payment)
            return payment
        match attempt.operation:
            case Operation.CAPTURE:
                previous = payment.move_to(PaymentStatus.CAPTURED, now)
                payment.amount_captured = attempt.amount
                payment.captured_at = now
                postings.append(self._capture_transfer(payment))
            case Operation.VOID:
                previous = payment.move_to(PaymentStatus.VOIDED, now)
            case Operation.EXPIRE:
                previous = payment.move_to(PaymentStatus.EXPIRED, now)
            case Operation.AUTHORIZE | Operation.REFUND:
                raise InternalError(f"not a payment operation: {attempt.operation}")
        payment.check()
        await self._store.update_payment(tx, payment)
        await self._store.append_txlog(tx, [self._entry(payment, previous, actor, result)])
        await self._store.insert_events(tx, [self._payment_event(payment, now)])
        return payment

    # --- refunds ---------------------------------------------------------------------------

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
        async with self._uow.transaction() as tx:
            payment = await self._store.get_payment(
                tx, payment_id, merchant_id=merchant_id, for_update=True
            )
            if payment is None:
                raise NotFound(f"No such payment: '{payment_id}'.", field="id")
            require_status(payment.status, "refunded", PaymentStatus.CAPTURED)
            value = refund_amount(
                amount,
                payment.amount_captured,
                payment.amount_refunded + payment.amount_refund_pending,
            )
            now = self._clock.now()
            refund = Refund(
                id=new_id("rfd"),
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
            attempt = Attempt(
                id=refund.attempt_id,
                payment_id=payment.id,
                merchant_id=merchant_id,
                operation=Operation.REFUND,
                amount=value,
                currency=payment.currency,
                connector=payment.connector,
                created_at=now,
                refund_id=refund.id,
            )
            payment.amount_refund_pending += value
            payment.updated_at = now
            payment.check()
            await self._store.insert_refund(tx, refund)
            if claim is not None:
                await self._idempotency.bind_resource(tx, claim, refund.id)
            await self._store.insert_attempt(tx, attempt)
            await self._store.update_payment(tx, payment)
            await self._store.append_txlog(
                tx, [self._refund_entry(refund, None, principal.actor, None)]
            )
        result = await self._call(
            "refund",
            self.connector(payment.connector).refund(
                attempt.id, payment.auth_attempt_id, value, payment.currency
            ),
        )
        async with self._uow.transaction() as tx:
            postings: list[TransferRequest] = []
            if outcome_of(result) is Outcome.UNKNOWN:
                current = refund
            else:
                current = await self._finish_refund(tx, attempt, result, principal.actor, postings)
            await self._complete(tx, claim, 201, current.to_json())
            await self._post(tx, postings)
        return current

    async def _recover_refund(
        self, merchant_id: str, claim: IdempotencyClaim, refund_id: str
    ) -> Refund:
        """As `_recover_payment`, for a refund: a retry never refunds twice."""
        async with self._uow.transaction() as tx:
            refund = await self._store.get_refund(tx, refund_id)
            if refund is None or refund.merchant_id != merchant_id:
                raise InternalError("an idempotency key is bound to a missing refund")
            if refund.status is RefundStatus.PENDING:
                claim.keep_open = True
                raise IdempotencyInProgress(
                    "The first attempt of this request is still being resolved; retry later."
                )
            await self._complete(tx, claim, 201, refund.to_json())
        return refund

    async def _finish_refund(
        self,
        tx: Transaction,
        attempt: Attempt,
        result: ConnectorResult,
        actor: str,
        postings: list[TransferRequest],
    ) -> Refund:
        outcome = outcome_of(result)
        now = self._clock.now()
        attempt.complete(outcome, result, now)
        refund_id = attempt.refund_id
        if refund_id is None:
            raise InternalError("refund attempt without refund")
        written = await self._store.complete_attempt(tx, attempt)
        payment = await self._store.get_payment(tx, attempt.payment_id, for_update=True)
        refund = await self._store.get_refund(tx, refund_id, for_update=True)
        if payment is None or refund is None:
            raise InternalError("refund or payment vanished")
        if not written:
            return refund
        target = RefundStatus.SUCCEEDED if outcome is Outcome.SUCCEEDED else RefundStatus.FAILED
        previous_refund = refund.status
        refund.status = target
        refund.updated_at = now
        payment.amount_refund_pending -= refund.amount
        payment.updated_at = now
        entries = [self._refund_entry(refund, previous_refund, actor, result)]
        events = [
            self._event(
                refund.merchant_id, EVENT_OF_REFUND[target], refund.id, refund.to_json(), now
            )
        ]
        if target is RefundStatus.SUCCEEDED:
            payment.amount_refunded += refund.amount
            postings.append(self._refund_transfer(payment, refund))
            if payment.amount_refunded == payment.amount_captured:
                previous = payment.move_to(PaymentStatus.REFUNDED, now)
                entries.append(self._entry(payment, previous, actor, None))
                events.append(self._payment_event(payment, now))
        payment.check()
        await self._store.update_refund(tx, refund)
        await self._store.update_payment(tx, payment)
        await self._store.append_txlog(tx, entries)
        await self._store.insert_events(tx, events)
        return refund

    # --- ledger ----------------------------------------------------------------------------

    async def _post(self, tx: Transaction, postings: list[TransferRequest]) -> None:
        """Post last, just before COMMIT: the platform's processor-receivable account is hot,
        and its row stays locked from the post to the commit (docs/decisions/0301)."""
        if postings:
            await self._ledger.post(tx, postings)

    def _capture_transfer(self, payment: Payment) -> TransferRequest:
        cur = payment.currency
        return TransferRequest(
            id=f"{payment.id}:capture",
            debit=AccountRef("platform", AccountKind.PROCESSOR_RECEIVABLE, cur),
            credit=AccountRef(payment.merchant_id, AccountKind.PENDING, cur),
            amount_minor=payment.amount_captured,
            currency=cur,
            code="capture",
            source=payment.id,
        )

    def _refund_transfer(self, payment: Payment, refund: Refund) -> TransferRequest:
        cur = payment.currency
        return TransferRequest(
            id=f"{refund.id}:refund",
            debit=AccountRef(payment.merchant_id, AccountKind.PENDING, cur),
            credit=AccountRef("platform", AccountKind.PROCESSOR_RECEIVABLE, cur),
            amount_minor=refund.amount,
            currency=cur,
            code="refund",
            source=refund.id,
        )

    # --- log and outbox --------------------------------------------------------------------

    def _entry(
        self,
        payment: Payment,
        previous: PaymentStatus | None,
        actor: str,
        result: ConnectorResult | None,
    ) -> TxlogEntry:
        return TxlogEntry(
            object_type="payment",
            object_id=payment.id,
            payment_id=payment.id,
            merchant_id=payment.merchant_id,
            from_status=None if previous is None else str(previous),
            to_status=str(payment.status),
            amount=payment.amount_captured
            if payment.status is PaymentStatus.CAPTURED
            else payment.amount,
            currency=payment.currency,
            actor=actor,
            connector_result=None if result is None else result.as_log(),
            occurred_at=payment.updated_at,
        )

    def _refund_entry(
        self,
        refund: Refund,
        previous: RefundStatus | None,
        actor: str,
        result: ConnectorResult | None,
    ) -> TxlogEntry:
        return TxlogEntry(
            object_type="refund",
            object_id=refund.id,
            payment_id=refund.payment_id,
            merchant_id=refund.merchant_id,
            from_status=None if previous is None else str(previous),
            to_status=str(refund.status),
            amount=refund.amount,
            currency=refund.currency,
            actor=actor,
            connector_result=None if result is None else result.as_log(),
            occurred_at=refund.updated_at,
        )

    def _event(
        self, merchant_id: str, type_: str, object_id: str, data: dict[str, Any], now: datetime
    ) -> Event:
        return Event(
            id=new_id("evt"),
            merchant_id=merchant_id,
            type=type_,
            object_id=object_id,
            data={"object": data},
            created_at=now,
        )

    def _payment_event(self, payment: Payment, now: datetime) -> Event:
        return self._event(
            payment.merchant_id,
            EVENT_OF_STATUS[payment.status],
            payment.id,
            payment.to_json(),
            now,
        )

    # --- reads -----------------------------------------------------------------------------

    def _scope(self, principal: Principal) -> str | None:
        if principal.merchant_id is not None:
            return principal.merchant_id
        principal.require(Permission.MERCHANTS_READ)
        return None

    async def get(self, principal: Principal, payment_id: str) -> Payment:
        scope = self._scope(principal)
        async with self._uow.autocommit() as tx:
            payment = await self._store.get_payment(tx, payment_id, merchant_id=scope)
        if payment is None:
            raise NotFound(f"No such payment: '{payment_id}'.", field="id")
        return payment

    async def list(
        self, principal: Principal, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[Payment]:
        scope = self._scope(principal)
        async with self._uow.autocommit() as tx:
            return await self._store.list_payments(tx, scope, page, filters)

    async def get_refund(self, principal: Principal, refund_id: str) -> Refund:
        scope = self._scope(principal)
        async with self._uow.autocommit() as tx:
            refund = await self._store.get_refund(tx, refund_id, merchant_id=scope)
        if refund is None:
            raise NotFound(f"No such refund: '{refund_id}'.", field="id")
        return refund

    async def list_refunds(
        self, principal: Principal, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[Refund]:
        scope = self._scope(principal)
        async with self._uow.autocommit() as tx:
            return await self._store.list_refunds(tx, scope, page, filters)

    async def get_event(self, principal: Principal, event_id: str) -> Event:
        scope = self._scope(principal)
        async with self._uow.autocommit() as tx:
            event = await self._store.get_event(tx, event_id, merchant_id=scope)
        if event is None:
            raise NotFound(f"No such event: '{event_id}'.", field="id")
        return event

    async def list_events(
        self, principal: Principal, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[Event]:
        scope = self._scope(principal)
        async with self._uow.autocommit() as tx:
            return await self._store.list_events(tx, scope, page, filters)

    async def set_require_cvc(self, principal: Principal, merchant_id: str, value: bool) -> None:
        principal.require(Permission.MERCHANTS_TERMS)
        async with self._uow.transaction() as tx:
            if await self._merchants.get(tx, merchant_id) is None:
                raise NotFound(f"No such merchant: '{merchant_id}'.", field="id")
            await self._store.set_require_cvc(tx, merchant_id, value)

    async def require_cvc(self, principal: Principal, merchant_id: str) -> bool:
        principal.require(Permission.MERCHANTS_READ)
        async with self._uow.transaction() as tx:
            if await self._merchants.get(tx, merchant_id) is None:
                raise NotFound(f"No such merchant: '{merchant_id}'.", field="id")
            return await self._store.require_cvc(tx, merchant_id)

    # --- janitor ---------------------------------------------------------------------------

    async def resolve_pending(self, limit: int) -> int:
        """Resolve attempts whose answer never arrived: ask the connector by our reference."""
        older_than = self._clock.now() - timedelta(seconds=self.janitor_grace_s)
        resolved = 0
        async with self._uow.transaction() as tx:
            attempts = await self._store.claim_pending_attempts(tx, older_than, limit)
            for attempt in attempts:
                connector = self.connector(attempt.connector)
                result = await self._call("status", connector.status(attempt.id))
                await self._resolve(tx, connector, attempt, result)
                resolved += 1
        return resolved

    async def _resolve(
        self, tx: Transaction, connector: Connector, attempt: Attempt, result: ConnectorResult
    ) -> None:
        approved = result.status is ConnectorStatus.APPROVED
        postings: list[TransferRequest] = []
        match attempt.operation:
            case Operation.AUTHORIZE:
                if approved or result.status is ConnectorStatus.DECLINED:
                    answer = result
                else:
                    # Unknown at the processor (or an error): release anything it may hold.
                    await self._call("void", connector.void(new_id("att"), attempt.id))
                    answer = ConnectorResult(
                        status=ConnectorStatus.ERROR,
                        response_code=result.response_code or "96",
                        decline_code="processing_error",
                    )
                payment = await self._store.get_payment(tx, attempt.payment_id, for_update=True)
                if payment is not None:
                    await self._finish_authorization(
                        tx, payment, attempt, answer, JANITOR, postings
                    )
            case Operation.CAPTURE | Operation.VOID | Operation.EXPIRE:
                answer = result if approved else ConnectorResult(status=ConnectorStatus.ERROR)
                await self._finish_operation(tx, attempt, answer, JANITOR, postings)
            case Operation.REFUND:
                answer = result if approved else ConnectorResult(status=ConnectorStatus.ERROR)
                await self._finish_refund(tx, attempt, answer, JANITOR, postings)
        await self._post(tx, postings)

    async def expire_authorizations(self, limit: int) -> int:
        """Void authorizations older than the window at the connector and mark them expired."""
        now = self._clock.now()
        before = now - timedelta(seconds=self.authorization_window_s)
        expired = 0
        async with self._uow.transaction() as tx:
            for payment in await self._store.claim_expirable(tx, before, limit):
                attempt = Attempt(
                    id=new_id("att"),
                    payment_id=payment.id,
                    merchant_id=payment.merchant_id,
                    operation=Operation.EXPIRE,
                    amount=0,
                    currency=payment.currency,
                    connector=payment.connector,
                    created_at=now,
                )
                await self._store.insert_attempt(tx, attempt)
                result = await self._call(
                    "void",
                    self.connector(payment.connector).void(attempt.id, payment.auth_attempt_id),
                )
                if outcome_of(result) is Outcome.SUCCEEDED:
                    await self._finish_operation(tx, attempt, result, JANITOR, [])
                    expired += 1
                else:
                    failed = ConnectorResult(status=ConnectorStatus.ERROR)
                    await self._finish_operation(tx, attempt, failed, JANITOR, [])
        return expired
