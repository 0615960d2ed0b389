"""What risk and routing rules see of a new payment, the routing their decision gives it, and
the payment they block.

A blocked payment (decision 0520) is written in the authorization's first transaction, declined
with `blocked` and answered from it: its attempt declined by us (no connector asked), its txlog
entry, its `payment.declined` event and its idempotent response, as any decline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from clearport.connectors.domain import ConnectorResult, ConnectorStatus
from clearport.core.errors import ConnectorFailed
from clearport.core.uow import Transaction
from clearport.idempotency.service import IdempotencyClaim, IdempotencyService
from clearport.ledger.domain import TransferRequest
from clearport.payments.attempts import new_attempt
from clearport.payments.domain import Operation, Payment, Routing, route
from clearport.payments.outcomes import OutcomeWriter
from clearport.payments.ports import PaymentStore
from clearport.payments.records import payment_entry
from clearport.routing.service import RoutePlan
from clearport.rulesets.domain import Facts
from clearport.vault.cards import StoredCard

log = structlog.get_logger("clearport.payments")

# What a payment blocked by risk rules records as its authorization's answer: declined, by us.
BLOCKED = ConnectorResult(status=ConnectorStatus.DECLINED, decline_code="blocked")


def facts_of(
    payment_id: str, merchant_id: str, mcc: str, amount: int, currency: str, card: StoredCard
) -> Facts:
    """What risk and routing rules know of a payment."""
    return Facts(
        payment_id=payment_id,
        merchant=merchant_id,
        mcc=mcc,
        amount=amount,
        currency=currency,
        brand=card.brand,
        bin=card.bin,
        funding=card.funding,
        issuer_country=card.issuer_country,
        fingerprint=card.fingerprint,
        category=card.category,
    )


def routing_of(plan: RoutePlan, facts: Facts, allows: Callable[[str], bool]) -> Routing:
    """The payment's routing: the rules' candidates, the first whose breaker lets calls out."""
    decision = plan.decide(facts)
    if not decision.candidates:
        raise ConnectorFailed(
            "No connector is available for payments; nothing was sent.",
            code="connector_unavailable",
        )
    return route(
        decision.candidates,
        decision.rule,
        decision.reason,
        allows,
        rule_set=decision.rule_set,
        version=decision.version,
    )


def _fired(payment: Payment) -> list[dict[str, Any]]:
    return list((payment.risk or {}).get("rules_fired", []))


class BlockedPayments:
    def __init__(
        self, store: PaymentStore, writer: OutcomeWriter, idempotency: IdempotencyService
    ) -> None:
        self._store = store
        self._writer = writer
        self._idempotency = idempotency

    async def record(
        self, tx: Transaction, actor: str, payment: Payment, claim: IdempotencyClaim | None
    ) -> Payment:
        """`payment` (pending, not routed) created declined in `tx`, answered under `claim`."""
        attempt = new_attempt(
            payment,
            Operation.AUTHORIZE,
            payment.amount,
            payment.created_at,
            attempt_id=payment.auth_attempt_id,
        )
        await self._store.insert_pending(
            tx, payment, attempt, payment_entry(payment, None, actor, None)
        )
        # The claim was bound to this payment when its transaction began (`claim_in`).
        postings: list[TransferRequest] = []
        current, _ = await self._writer.authorization(
            tx, payment, attempt, BLOCKED, actor, postings, storing=claim
        )
        if claim is not None and not claim.completed_in_transaction:
            await self._writer.respond(tx, claim, 201, current)
        log.info("payment_blocked", payment=payment.id, rules=[r["name"] for r in _fired(payment)])
        return current
