"""The payment services over the shipped in-memory fakes: no database, no network."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from clearport.access.domain import Principal, PrincipalKind
from clearport.connectors.directory import FixedDirectory, GuardOptions
from clearport.connectors.domain import BreakerPolicy
from clearport.connectors.fake import FakeConnector
from clearport.core.sensitive import SensitiveStr
from clearport.core.uow import FakeUnitOfWork
from clearport.events.fake import FakeEventStore
from clearport.http.representation import ApiRepresentation
from clearport.idempotency.fake import FakeIdempotencyStore
from clearport.idempotency.service import IdempotencyClaim, IdempotencyService, Replay
from clearport.ledger.fake import FakeLedgerStore
from clearport.ledger.service import LedgerService
from clearport.merchants.fake import FakeMerchantRepository
from clearport.payments.authorize import InlineCard, NewPayment
from clearport.payments.fake import FakePaymentStore
from clearport.payments.service import PaymentService
from clearport.risk.domain import RiskRuleSet
from clearport.risk.fake import FakeVelocityCounter
from clearport.risk.service import RiskScreen
from clearport.routing.domain import RuleSet
from clearport.routing.service import Router
from clearport.rulesets.fake import FixedActiveRules
from clearport.txlog.fake import FakeTxlogStore
from clearport.vault.cards import CardInput
from clearport.vault.fake import FakeCardVault

WINDOW_S = 7 * 86_400


class TickingClock:
    """A clock set by hand that moves a millisecond every time it is read, as time passes
    between a request's statements."""

    def __init__(self) -> None:
        self.at = datetime(2030, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        self.at += timedelta(milliseconds=1)
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@dataclass
class World:
    clock: TickingClock
    uow: FakeUnitOfWork
    merchants: FakeMerchantRepository
    vault: FakeCardVault
    ledger: FakeLedgerStore
    txlog: FakeTxlogStore
    events: FakeEventStore
    keys: FakeIdempotencyStore
    idempotency: IdempotencyService
    store: FakePaymentStore
    connector: FakeConnector
    connectors: dict[str, FakeConnector]  # every candidate, in the default order
    payments: PaymentService
    merchant: Principal

    async def claim(self, key: str, body: bytes = b"{}") -> IdempotencyClaim:
        outcome = await self.begin(key, body)
        assert isinstance(outcome, IdempotencyClaim)
        return outcome

    async def begin(self, key: str, body: bytes = b"{}") -> IdempotencyClaim | Replay:
        scope = self.merchant.idempotency_scope
        digest = self.idempotency.request_hash("POST", "/v1/payments", body)
        return await self.idempotency.begin(scope, key, digest)

    def stored_response(self, key: str) -> bytes | None:
        return self.keys.entries[(self.merchant.idempotency_scope, key)].response_body

    def nothing_held_while_calling(self) -> bool:
        """No transaction was open at any connector call."""
        return all(
            open_blocks == 0
            for connector in self.connectors.values()
            for _, open_blocks in connector.seen_while_calling
        )


def world(
    *,
    connector_timeout_s: float = 5.0,
    require_cvc: bool = False,
    backups: tuple[str, ...] = (),
    breaker_failures: int = 1_000,
    candidates: bool = True,
) -> World:
    """Payments over the fakes; `backups` are further candidates after the connector `fake`;
    without `candidates`, no connector is configured at all."""
    clock = TickingClock()
    merchants = FakeMerchantRepository()
    vault = FakeCardVault(clock)
    ledger = FakeLedgerStore(clock, merchants)
    txlog = FakeTxlogStore()
    events = FakeEventStore()
    keys = FakeIdempotencyStore(clock)
    store = FakePaymentStore(txlog, events, keys)
    uow = FakeUnitOfWork(merchants, vault, ledger, txlog, events, keys, store)
    idempotency = IdempotencyService(keys, b"unit-test-secret", ttl_s=86_400, lock_timeout_s=60)
    connectors = {
        name: FakeConnector(name, while_calling=lambda: uow.open) for name in ("fake", *backups)
    }
    connector = connectors["fake"]
    directory = FixedDirectory(
        connectors if candidates else {},
        GuardOptions(
            BreakerPolicy(failure_threshold=breaker_failures, cooldown_s=60),
            connector_timeout_s,
        ),
    )
    routing_rules: FixedActiveRules[RuleSet] = FixedActiveRules()
    risk_rules: FixedActiveRules[RiskRuleSet] = FixedActiveRules()
    payments = PaymentService(
        uow,
        store,
        merchants,
        vault,
        LedgerService(uow, ledger, clock),
        idempotency,
        events,
        txlog,
        ApiRepresentation(),
        directory,
        clock,
        router=Router(routing_rules, directory),
        risk=RiskScreen(risk_rules, FakeVelocityCounter()),
        max_amount_minor={"usd": 1_000_000_00},
        authorization_window_s=WINDOW_S,
        janitor_grace_s=0,
    )
    merchant = merchants.add(require_cvc=require_cvc)
    principal = Principal(PrincipalKind.MERCHANT, key_id="key_unit", merchant_id=merchant.id)
    return World(
        clock,
        uow,
        merchants,
        vault,
        ledger,
        txlog,
        events,
        keys,
        idempotency,
        store,
        connector,
        connectors,
        payments,
        principal,
    )


def card_payment(
    amount: int = 1_000, *, capture: bool = False, cvc: str | None = "123"
) -> NewPayment:
    card = CardInput(SensitiveStr("4242424242424242"), 12, 2035)
    return NewPayment(
        amount,
        "usd",
        InlineCard(card, None if cvc is None else SensitiveStr(cvc)),
        capture,
        None,
        {},
    )
