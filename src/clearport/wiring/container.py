"""The container: every service of one process, built by `build_container`, started and stopped
with the process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from clearport.core.clock import Clock
from clearport.core.invalidation import InvalidationHub
from clearport.db import migrate

if TYPE_CHECKING:
    from clearport.access.service import Authenticator
    from clearport.adjustments.service import AdjustmentService
    from clearport.audit.service import Auditor, AuditQueries
    from clearport.bins.service import BinService
    from clearport.config import Settings
    from clearport.connectors.ports import ConnectorDirectory
    from clearport.connectors.service import ConnectorService
    from clearport.connectors.simulator.connector import SimulatorConnector
    from clearport.db.database import Database
    from clearport.db.group_commit import GroupCommit
    from clearport.db.invalidation import InvalidationListener
    from clearport.disputes.service import DisputeService
    from clearport.events.service import EventQueries
    from clearport.files.service import FileService
    from clearport.idempotency.ports import IdempotencyStore
    from clearport.idempotency.service import IdempotencyService
    from clearport.ledger.service import LedgerService
    from clearport.merchants.service import MerchantService
    from clearport.payments.service import PaymentService
    from clearport.payments.stats import PaymentStatistics
    from clearport.reconciliation.queue import ExceptionQueue
    from clearport.reconciliation.service import ReconciliationService
    from clearport.replay.service import RoutingSimulations
    from clearport.risk.domain import RiskRuleSet
    from clearport.routing.domain import RuleSet
    from clearport.routing.service import Router
    from clearport.rulesets.service import RuleSets
    from clearport.sessions.service import ConsoleSignIn
    from clearport.settlement.jobs import SettlementJobs
    from clearport.settlement.service import SettlementService
    from clearport.storage.ports import ObjectStorage
    from clearport.txlog.mirror import TxlogMirror
    from clearport.txlog.service import ChainService
    from clearport.vault.ceremony import KeyCeremony
    from clearport.vault.service import VaultService
    from clearport.webhooks.service import WebhookService


@dataclass
class Container:
    settings: Settings
    db: Database
    clock: Clock
    server_secret: bytes
    auditor: Auditor
    authenticator: Authenticator
    console_sign_in: ConsoleSignIn  # operator console: TOTP, sessions, lockout per key
    merchants: MerchantService
    audit_queries: AuditQueries
    idempotency: IdempotencyService
    vault: VaultService
    ledger: LedgerService
    payments: PaymentService
    payment_stats: PaymentStatistics  # the console's overview
    events: EventQueries
    chains: ChainService
    simulator: SimulatorConnector
    connectors: ConnectorService
    connector_directory: ConnectorDirectory
    idempotency_store: IdempotencyStore
    settlement: SettlementService
    # A run's partitions as jobs for the workers (`POST /v1/settlement_runs` queues them).
    settlement_jobs: SettlementJobs
    storage: ObjectStorage
    mirror: TxlogMirror | None  # the DynamoDB mirror of the txlog, when a table is configured
    webhooks: WebhookService
    files: FileService
    disputes: DisputeService
    adjustments: AdjustmentService
    reconciliation: ReconciliationService
    reconciliation_queue: ExceptionQueue  # the exceptions the runs leave, and their resolution
    bins: BinService
    routing_rules: RuleSets[RuleSet]
    router: Router  # what payments ask: the active routing rule set, cached
    routing_simulations: RoutingSimulations
    risk_rules: RuleSets[RiskRuleSet]
    key_ceremony: KeyCeremony | None  # the local keyring's split/combine; None with KMS
    # This process's caches by topic, and the connection that tells them what changed in other
    # processes (decision 0019).
    invalidations: InvalidationHub
    invalidation_listener: InvalidationListener
    # The pool that caches read through while a request may hold the main pool's connections.
    cache_db: Database | None = None
    # The pool a settlement run's partitions and staging shares run on, several at once
    # (decision 0914): never waits for a connection a request holds.
    settlement_db: Database | None = None
    group_commit: GroupCommit | None = None  # the answers' shared commits (decision 0912)

    @staticmethod
    def schema_head() -> str:
        """The migration this code expects (`/readyz` compares the database's with it)."""
        return migrate.head_revision()

    async def start(self, *, listen: bool = True) -> None:
        """Open the pool and, for a process that serves (API, worker), listen for cache
        invalidations; a one-shot command caches nothing worth a connection."""
        await self.db.open()
        if self.cache_db is not None:
            await self.cache_db.open()
        if self.settlement_db is not None:
            await self.settlement_db.open()
        if listen:
            await self.invalidation_listener.start()
            # Loaded now, not by the first tokenization inside its transaction (bins/service.py).
            await self.bins.warm()

    async def stop(self) -> None:
        if self.group_commit is not None:
            await self.group_commit.close()  # what waits is committed (and answered) first
        await self.authenticator.close()
        await self.invalidation_listener.stop()
        await self.settlement_jobs.close()
        await self.connector_directory.close()
        await self.db.close()
        if self.cache_db is not None:
            await self.cache_db.close()
        if self.settlement_db is not None:
            await self.settlement_db.close()

    def terminate(self) -> None:
        """The process dies: every pool's connections dropped at once, none closed cleanly."""
        for database in (self.db, self.cache_db, self.settlement_db):
            if database is not None:
                database.terminate()
