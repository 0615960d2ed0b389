"""Authorizations and sales: the hot path (docs/design.md "The authorization path").

Two durable writes (docs/decisions/0300): the pending payment, its attempt and the card's token
commit before the connector is called; the answer is written after. An authorization whose
outcome is known and that moves no money finishes in ONE autocommit statement that also stores
the idempotent response; a sale (it posts to the ledger) or a failure to reverse takes a
transaction. The CVC travels in memory from the request to the connector calls; it is never
written anywhere.

Risk, then routing (decisions 0510, 0520; `screening.py`): the active rule sets are read from
this process's caches before the first transaction; inside it, once the card is known, the risk
rules screen the payment (one read for velocity) and the routing rules give its candidates. A
payment they block is written declined in that one transaction and never routed.

This module is the first half, up to the pending payment's commit; `authorization_calls.py` the
second: the connector calls, failover (decision 0501) and the answer's write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime

import structlog

from clearport.access.domain import Principal
from clearport.connectors.domain import ConnectorCard
from clearport.core.clock import Clock
from clearport.core.errors import (
    Field,
    IdempotencyInProgress,
    InternalError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    present,
)
from clearport.core.ids import new_id
from clearport.core.money import parse_currency
from clearport.core.sensitive import SensitiveStr
from clearport.core.uow import Transaction, UnitOfWork
from clearport.idempotency.service import IdempotencyClaim, IdempotencyService
from clearport.merchants.domain import MerchantStatus
from clearport.merchants.ports import MerchantGates
from clearport.payments.attempts import new_attempt
from clearport.payments.authorization_calls import AuthorizationCalls
from clearport.payments.calls import ConnectorCalls
from clearport.payments.domain import (
    Operation,
    Payment,
    PaymentStatus,
    Routing,
    validate_amount,
)
from clearport.payments.lost import LostCalls
from clearport.payments.outcomes import OutcomeWriter
from clearport.payments.ports import CardVault, PaymentStore
from clearport.payments.records import payment_entry
from clearport.payments.screening import BlockedPayments, facts_of, routing_of
from clearport.risk.domain import RiskDecision
from clearport.risk.service import RiskScreen
from clearport.routing.service import Router
from clearport.vault.cards import CardInput, validate_card, validate_cvc
from clearport.vault.service import StoredCard

log = structlog.get_logger("clearport.payments")


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


class Authorizations:
    def __init__(
        self,
        uow: UnitOfWork,
        store: PaymentStore,
        merchants: MerchantGates,
        vault: CardVault,
        idempotency: IdempotencyService,
        calls: ConnectorCalls,
        writer: OutcomeWriter,
        lost: LostCalls,
        clock: Clock,
        *,
        router: Router,
        risk: RiskScreen,
        max_amount_minor: Mapping[str, int],
        grouped: Callable[[], AbstractAsyncContextManager[Transaction]] | None = None,
    ) -> None:
        self._answers = AuthorizationCalls(
            uow, store, calls, writer, lost, clock, grouped or uow.autocommit
        )
        self._router = router
        self._risk = risk
        self._blocked = BlockedPayments(store, writer, idempotency)
        self._uow = uow
        self._store = store
        self._merchants = merchants
        self._vault = vault
        self._idempotency = idempotency
        self._calls = calls
        self._writer = writer
        self._clock = clock
        self._max_amount_minor = max_amount_minor

    async def create(
        self, principal: Principal, new: NewPayment, claim: IdempotencyClaim | None
    ) -> Payment:
        merchant_id = principal.require_merchant()
        if claim is not None and claim.recovered_resource is not None:
            return await self._recover(merchant_id, claim, claim.recovered_resource)
        parse_currency(new.currency)
        validate_amount(new.amount, new.currency, max_amount_minor=self._max_amount_minor)
        if isinstance(new.source, InlineCard):
            today = self._clock.now().date()
            brand = validate_card(new.source.card, today, field_prefix=("source", "card"))
            if new.source.cvc is not None:
                validate_cvc(new.source.cvc, brand, field=("source", "card", "cvc"))
        # Read before the transaction: rule sets and connectors from this process's caches.
        plan = await self._router.plan()
        risk_set = await self._risk.active_set()
        now = self._clock.now()
        payment_id = new_id("pay")
        try:
            async with self._uow.transaction() as tx:
                if claim is not None:
                    # First: the claim (deferred ones are made here, in this commit, decision 0912)
                    # is bound to the payment this transaction creates, so a retry after a crash
                    # recovers it instead of charging twice.
                    await self._idempotency.claim_in(tx, claim, payment_id)
                gate = await self._merchants.merchant_gate(tx, merchant_id)
                if gate is None:
                    raise NotFound("No such merchant.")
                if gate.status is not MerchantStatus.ACTIVE:
                    raise PermissionDenied(
                        f"This merchant is {gate.status} and cannot create payments.",
                        code="merchant_inactive",
                    )
                card_input: CardInput | None = None
                stored: StoredCard
                cvc_field: Field
                if isinstance(new.source, InlineCard):
                    cvc, cvc_field = new.source.cvc, ("source", "card", "cvc")
                    _require_cvc(cvc, gate.require_cvc, cvc_field)
                    stored = await self._vault.tokenize(tx, merchant_id, new.source.card)
                    card_input = new.source.card
                else:
                    cvc, cvc_field = new.source.cvc, ("source", "cvc")
                    _require_cvc(cvc, gate.require_cvc, cvc_field)
                    stored = await self._vault.get_card(
                        tx, merchant_id, new.source.token, field=("source", "token")
                    )
                    if cvc is not None:
                        validate_cvc(cvc, stored.brand, field=cvc_field)
                facts = facts_of(
                    payment_id, merchant_id, gate.mcc, new.amount, new.currency, stored
                )
                # Risk before routing (decision 0520): a blocked payment is never routed.
                risk = await self._risk.screen(tx, risk_set, facts, now)
                if risk is not None and risk.blocked:
                    payment = self._new_payment(
                        payment_id, merchant_id, new, stored, None, risk, now
                    )
                    return await self._blocked.record(tx, principal.actor, payment, claim)
                routing = routing_of(plan, facts, self._calls.allows)
                if card_input is None and isinstance(new.source, TokenSource):
                    card_input = await self._vault.reveal_for_connector(
                        tx,
                        merchant_id,
                        new.source.token,
                        payment_id=payment_id,
                        connector=routing.connector,
                    )
                payment = self._new_payment(
                    payment_id, merchant_id, new, stored, routing, risk, now
                )
                attempt = new_attempt(
                    payment,
                    Operation.AUTHORIZE,
                    new.amount,
                    now,
                    attempt_id=payment.auth_attempt_id,
                )
                await self._store.insert_pending(
                    tx, payment, attempt, payment_entry(payment, None, principal.actor, None)
                )
        except BaseException:
            if claim is not None:
                claim.rolled_back()  # rolled back with the payment: nothing is claimed
            raise
        # Committed: from here on, a crash leaves a pending attempt the janitor resolves.
        card_input = present(card_input, "a routed payment has its card")
        connector_card = ConnectorCard(
            number=card_input.number,
            exp_month=card_input.exp_month,
            exp_year=card_input.exp_year,
            cvc=cvc,
        )
        del cvc
        reversals: list[asyncio.Task[bool]] = []
        try:
            return await self._answers.authorize(
                principal, payment, attempt, connector_card, claim, reversals
            )
        finally:
            del connector_card
            # Reversals sent while failing over finish before the answer; a crash leaves them
            # pending for the janitor.
            await asyncio.gather(*reversals, return_exceptions=True)

    def _new_payment(
        self,
        payment_id: str,
        merchant_id: str,
        new: NewPayment,
        stored: StoredCard,
        routing: Routing | None,
        risk: RiskDecision | None,
        now: datetime,
    ) -> Payment:
        return Payment(
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
            auth_attempt_id=new_id("att"),
            # A blocked payment goes to no connector ('' is shown as null).
            connector="" if routing is None else routing.connector,
            routing={} if routing is None else routing.as_json(),
            reference=new.reference,
            metadata=new.metadata,
            created_at=now,
            updated_at=now,
            card_funding=stored.funding,
            card_category=stored.category,
            card_issuer_country=stored.issuer_country,
            risk=None if risk is None else risk.as_json(),
        )

    async def _recover(self, merchant_id: str, claim: IdempotencyClaim, payment_id: str) -> Payment:
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
            await self._writer.respond(tx, claim, 201, payment)
        return payment


def _require_cvc(cvc: SensitiveStr | None, required: bool, field: Field) -> None:
    if cvc is None and required:
        raise InvalidRequest(
            "This merchant requires '{field}'.", code="parameter_missing", field=field
        )
