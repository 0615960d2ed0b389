"""Authorizations and sales: the hot path (docs/design.md "The authorization path").

Two durable writes (docs/decisions/0300): the pending payment, its attempt and the card's token
commit before the connector is called; the answer is written after. An authorization whose
outcome is known and that moves no money finishes in ONE autocommit statement that also stores
the idempotent response; a sale (it posts to the ledger) or an unknown outcome takes a
transaction. The CVC travels in memory from the request to the one connector call; it is never
written anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
)
from clearport.core.ids import new_id
from clearport.core.money import parse_currency
from clearport.core.sensitive import SensitiveStr
from clearport.core.uow import UnitOfWork
from clearport.idempotency.service import IdempotencyClaim, IdempotencyService
from clearport.ledger.domain import TransferRequest
from clearport.merchants.domain import MerchantStatus
from clearport.merchants.ports import MerchantGates
from clearport.payments.calls import ConnectorCalls
from clearport.payments.domain import (
    Operation,
    Outcome,
    Payment,
    PaymentStatus,
    authorization_target,
    new_attempt,
    outcome_of,
    route,
    validate_amount,
)
from clearport.payments.outcomes import OutcomeWriter
from clearport.payments.ports import CardVault, PaymentStore
from clearport.payments.records import payment_entry
from clearport.vault.cards import CardInput, validate_card, validate_cvc
from clearport.vault.service import StoredCard


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
        clock: Clock,
        *,
        max_amount_minor: Mapping[str, int],
    ) -> None:
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
        routing = route(self._calls.names)
        now = self._clock.now()
        payment_id = new_id("pay")
        async with self._uow.transaction() as tx:
            gate = await self._merchants.merchant_gate(tx, merchant_id)
            if gate is None:
                raise NotFound("No such merchant.")
            if gate.status is not MerchantStatus.ACTIVE:
                raise PermissionDenied(
                    f"This merchant is {gate.status} and cannot create payments.",
                    code="merchant_inactive",
                )
            card_input: CardInput
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
                auth_attempt_id=new_id("att"),
                connector=routing.connector,
                routing=routing.as_json(),
                reference=new.reference,
                metadata=new.metadata,
                created_at=now,
                updated_at=now,
            )
            attempt = new_attempt(
                payment, Operation.AUTHORIZE, new.amount, now, attempt_id=payment.auth_attempt_id
            )
            await self._store.insert_pending(
                tx, payment, attempt, payment_entry(payment, None, principal.actor, None)
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
        result = await self._calls.call(
            "authorize",
            self._calls[routing.connector].authorize(
                attempt.id, new.amount, new.currency, connector_card, capture=new.capture
            ),
        )
        del connector_card, cvc
        outcome = outcome_of(result)
        # The common case, an answer that moves no money, is one statement of its own.
        alone = outcome is not Outcome.UNKNOWN and (
            authorization_target(outcome, capture=new.capture) is not PaymentStatus.CAPTURED
        )
        block = self._uow.autocommit() if alone else self._uow.transaction()
        async with block as tx:
            postings: list[TransferRequest] = []
            current, _ = await self._writer.authorization(
                tx,
                payment,
                attempt,
                result,
                principal.actor,
                postings,
                storing=claim if alone else None,
            )
            if claim is not None and not claim.completed_in_transaction:
                await self._writer.respond(tx, claim, 201, current)
            await self._writer.post(tx, postings)
        return current

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
