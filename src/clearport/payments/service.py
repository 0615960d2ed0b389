"""Payments: authorize, capture, void, refund and sale through a connector, the janitor, and
the reads; one name (`Container.payments`) for the entry points.

The use cases live in their own modules: `authorize` (create, sale, failover, recovering an
abandoned first attempt), `operations` (capture, void, refund), `janitor` (pending attempts,
expiring authorizations) over `lost` (settling a call whose answer never came, reversals),
`queries` (payments and refunds). Every connector call follows the three steps
of docs/decisions/0300; `outcomes.OutcomeWriter` writes the answers for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager

from clearport.connectors.ports import ConnectorDirectory
from clearport.core.clock import Clock
from clearport.core.uow import Transaction, UnitOfWork
from clearport.events.ports import EventStore
from clearport.idempotency.service import IdempotencyService
from clearport.ledger.service import LedgerService
from clearport.merchants.ports import MerchantGates
from clearport.payments.authorize import Authorizations, InlineCard, NewPayment, TokenSource
from clearport.payments.calls import ConnectorCalls
from clearport.payments.disputed import DisputedPayments
from clearport.payments.janitor import Janitor
from clearport.payments.lost import LostCalls
from clearport.payments.operations import Operations
from clearport.payments.outcomes import OutcomeWriter
from clearport.payments.ports import CardVault, PaymentStore, Representation
from clearport.payments.queries import PaymentQueries
from clearport.risk.service import RiskScreen
from clearport.routing.service import Router
from clearport.txlog.ports import TxlogStore

__all__ = ["InlineCard", "NewPayment", "PaymentService", "TokenSource"]


class PaymentService:
    def __init__(
        self,
        uow: UnitOfWork,
        store: PaymentStore,
        merchants: MerchantGates,
        vault: CardVault,
        ledger: LedgerService,
        idempotency: IdempotencyService,
        events: EventStore,
        txlog: TxlogStore,
        shown: Representation,
        connectors: ConnectorDirectory,
        clock: Clock,
        *,
        router: Router,
        risk: RiskScreen,
        max_amount_minor: Mapping[str, int],
        authorization_window_s: int,
        janitor_grace_s: int,
        grouped: Callable[[], AbstractAsyncContextManager[Transaction]] | None = None,
    ) -> None:
        calls = ConnectorCalls(connectors)
        writer = OutcomeWriter(store, events, txlog, ledger, idempotency, shown, clock)
        lost = LostCalls(uow, store, calls, writer, clock)
        self.authorizations = Authorizations(
            uow,
            store,
            merchants,
            vault,
            idempotency,
            calls,
            writer,
            lost,
            clock,
            router=router,
            risk=risk,
            max_amount_minor=max_amount_minor,
            grouped=grouped,
        )
        self.operations = Operations(uow, store, txlog, idempotency, calls, writer, clock)
        self.janitor = Janitor(
            uow,
            store,
            calls,
            writer,
            lost,
            clock,
            grace_s=janitor_grace_s,
            authorization_window_s=authorization_window_s,
        )
        self.queries = PaymentQueries(uow, store)
        # For the disputes feature: a payment locked and what chargebacks took recorded.
        self.disputed = DisputedPayments(store, clock)
        # The use cases under the names the entry points know.
        self.create = self.authorizations.create
        self.capture = self.operations.capture
        self.void = self.operations.void
        self.refund = self.operations.refund
        self.get = self.queries.get
        self.list = self.queries.list
        self.get_refund = self.queries.get_refund
        self.list_refunds = self.queries.list_refunds
        self.attempts = self.queries.attempts
        self.resolve_pending = self.janitor.resolve_pending
        self.expire_authorizations = self.janitor.expire_authorizations

    @property
    def janitor_grace_s(self) -> int:
        """How long an attempt stays pending before the janitor asks about it (settable: the
        CLI's `janitor --grace`)."""
        return self.janitor.grace_s

    @janitor_grace_s.setter
    def janitor_grace_s(self, value: int) -> None:
        self.janitor.grace_s = value
