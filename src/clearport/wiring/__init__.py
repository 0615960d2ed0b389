"""The one place that picks concrete adapters and hands them to the use cases.

Entry points (`http`, `worker`, `cli`) get everything from here: the container of services for
a database, and the few infrastructure steps a command needs before it has one (find or start
the database, migrate it, the keyring for the key ceremony). They never import a store or an
adapter themselves. This module builds the container (`container.Container`); the steps live
beside it, one module per kind (`keys`, `cloud`, `database`, `simulators`), and are
re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from clearport.core.clock import Clock, SystemClock
from clearport.core.invalidation import CacheTopic, InvalidationHub
from clearport.vault.keyring import ComponentFiles
from clearport.wiring.cloud import bootstrap_cloud, dynamodb_mirror_for, object_storage_for
from clearport.wiring.console import console_sign_in_for
from clearport.wiring.container import Container
from clearport.wiring.database import database_url, is_migrated, schema_head, upgrade_database
from clearport.wiring.keys import (
    build_key_provider,
    checkpoint_signer_for,
    checkpoint_verifier,
    key_provider_for,
    local_key_custody,
)
from clearport.wiring.simulators import in_process_hosts, serve_simulator

__all__ = [
    "Container",
    "bootstrap_cloud",
    "build_container",
    "build_key_provider",
    "checkpoint_signer_for",
    "checkpoint_verifier",
    "database_url",
    "dynamodb_mirror_for",
    "in_process_hosts",
    "is_migrated",
    "key_provider_for",
    "local_key_custody",
    "object_storage_for",
    "schema_head",
    "serve_simulator",
    "upgrade_database",
]

if TYPE_CHECKING:
    from clearport.config import Settings
    from clearport.connectors.ports import Connector, ConnectorDirectory
    from clearport.webhooks.ports import Resolver


def build_container(
    settings: Settings,
    database_url: str,
    *,
    clock: Clock | None = None,
    connectors: Mapping[str, Connector] | None = None,
    resolver: Resolver | None = None,
    wrap_connectors: Callable[[Connector], Connector] | None = None,
) -> Container:
    """Every service over `database_url`. Payments go to the registered connectors (the
    connector directory), or, given `connectors`, to those alone in their order (tests);
    `wrap_connectors` goes around every registered connector built (injected faults). Webhook
    hosts are resolved by `resolver`, by default the system's."""
    # Imported here, not at the top: the commands that only need the database URL or the
    # keyring (`db upgrade`, `keys split`) load none of the stores, asyncpg or pyarrow.
    from clearport.access.lockout import LockoutPolicy
    from clearport.access.rate_limits import SharedRateLimiter
    from clearport.access.server_secret import load_or_create_server_secret
    from clearport.access.service import AuthCaches, Authenticator
    from clearport.access.store import PgApiKeyRepository, PgAuthFailureCounter, PgRateShares
    from clearport.adjustments.service import AdjustmentService
    from clearport.adjustments.store import PgAdjustmentStore
    from clearport.audit.service import Auditor, AuditQueries
    from clearport.audit.store import PgAuditLog
    from clearport.bins.service import BinDirectory, BinService
    from clearport.bins.store import PgBinRepository
    from clearport.connectors.catalog import connector_types
    from clearport.connectors.directory import (
        FixedDirectory,
        GuardOptions,
        RegistryDirectory,
    )
    from clearport.connectors.domain import BreakerPolicy
    from clearport.connectors.service import ConnectorService
    from clearport.connectors.simulator.connector import SimulatorConnector
    from clearport.connectors.store import PgConnectorRepository
    from clearport.db.database import Database
    from clearport.db.group_commit import GroupCommit
    from clearport.db.invalidation import InvalidationListener, PgInvalidations
    from clearport.disputes.service import DisputeService
    from clearport.disputes.store import PgDisputeStore
    from clearport.events.service import EventQueries, Outbox
    from clearport.events.store import PgEventStore
    from clearport.files.service import FileService
    from clearport.files.store import PgFileStore
    from clearport.http.representation import ApiRepresentation
    from clearport.idempotency.service import IdempotencyService
    from clearport.idempotency.store import PgIdempotencyStore
    from clearport.ledger.service import LedgerService
    from clearport.ledger.store import PgLedgerStore
    from clearport.merchants.gates import CachedMerchantGates
    from clearport.merchants.service import MerchantService
    from clearport.merchants.store import PgMerchantRepository, PgPaymentSettingsRepository
    from clearport.payments.service import PaymentService
    from clearport.payments.stats import PaymentStatistics
    from clearport.payments.store import PgPaymentStore
    from clearport.payments.store.stats import PgPaymentStats
    from clearport.reconciliation.queue import ExceptionQueue
    from clearport.reconciliation.service import ReconciliationService
    from clearport.reconciliation.store import PgReconciliationStore
    from clearport.replay.service import RoutingSimulations
    from clearport.replay.store import PgHistory
    from clearport.risk.plugins import risk_conditions
    from clearport.risk.service import RiskRuleKind, RiskScreen
    from clearport.risk.store import PgVelocityCounter
    from clearport.routing.service import Router, RoutingRuleKind
    from clearport.rulesets.service import ActiveRules, RuleSets
    from clearport.rulesets.store import PgRuleSetRepository
    from clearport.settlement.calendar import HolidayCalendar
    from clearport.settlement.destinations import VaultPayoutDestinations
    from clearport.settlement.interchange_tables import table_for
    from clearport.settlement.jobs import SettlementJobs
    from clearport.settlement.payout_files import NachaOriginator, SepaDebtor
    from clearport.settlement.payout_files.renderer import PayoutFiles
    from clearport.settlement.report_files import ReportSink
    from clearport.settlement.service import SettlementService
    from clearport.settlement.store import PgSettlementStore
    from clearport.txlog.mirror import TxlogMirror
    from clearport.txlog.service import ChainService
    from clearport.txlog.signatures import PublicKeyVerifier
    from clearport.txlog.store import PgChainCopies, PgChainStore, PgTxlogStore
    from clearport.vault.ceremony import KeyCeremony
    from clearport.vault.envelope import AesGcmCipher, TtlDekCache
    from clearport.vault.service import VaultService
    from clearport.vault.store import PgVaultRepository, PgWrappedKeys
    from clearport.webhooks.guard import LoopbackSwitch, UrlGuard
    from clearport.webhooks.resolver import SystemResolver
    from clearport.webhooks.sender import HttpxSender, ssl_context
    from clearport.webhooks.service import WebhookService
    from clearport.webhooks.store import PgWebhookStore

    clock = clock or SystemClock()
    secret = load_or_create_server_secret(
        settings.secret_key.get_secret_value() if settings.secret_key else None,
        settings.data_dir,
    )
    db = Database(database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
    uow = db
    # What caches load while a request holds a transaction (the BIN table during tokenization,
    # key material wrapped by KMS on a first use) comes from a small pool of its own: from the
    # main pool it could wait for a connection that every other request holds while waiting on
    # a lock that transaction holds (a first DEK, an idempotency claim), a deadlock.
    cache_db = Database(database_url, min_size=0, max_size=2)
    # Key material wrapped by KMS lives in the database, so every machine shares it.
    key_provider = key_provider_for(settings, shared=PgWrappedKeys(cache_db))
    storage = object_storage_for(settings)
    hub = InvalidationHub()
    invalidations = PgInvalidations(hub)
    audit_log = PgAuditLog()
    auditor = Auditor(audit_log, clock)
    keys = PgApiKeyRepository()
    merchants_repo = PgMerchantRepository()
    rate_limiter = SharedRateLimiter(
        PgRateShares(db),
        limit=settings.rate_limit_requests,
        window_s=settings.rate_limit_window_s,
        sync_s=settings.rate_limit_sync_s,
    )
    bin_repo = PgBinRepository()
    bin_directory = BinDirectory(cache_db, bin_repo, ttl_s=settings.rules_cache_ttl_s)
    hub.subscribe(CacheTopic.BINS, bin_directory)
    idempotency_store = PgIdempotencyStore(db)
    idempotency = IdempotencyService(
        idempotency_store,
        secret,
        ttl_s=settings.idempotency_ttl_s,
        lock_timeout_s=settings.idempotency_lock_timeout_s,
    )
    vault = VaultService(
        uow,
        PgVaultRepository(),
        merchants_repo,
        key_provider,
        AesGcmCipher(),
        TtlDekCache(max_entries=settings.dek_cache_size, ttl_s=settings.dek_cache_ttl_s),
        auditor,
        clock,
        invalidations,
        bins=bin_directory,
        idempotency=idempotency,
    )
    hub.subscribe(CacheTopic.DATA_KEYS, vault.cached_data_keys)
    # What every request reads is cached per process (decision 0910).
    auth_caches = AuthCaches(max_entries=settings.auth_cache_size, ttl_s=settings.auth_cache_ttl_s)
    hub.subscribe(CacheTopic.API_KEY, auth_caches.keys)
    hub.subscribe(CacheTopic.AUTH_LOCKOUT, auth_caches.lockouts)
    settlement_store = PgSettlementStore()
    ledger = LedgerService(uow, PgLedgerStore(), clock, settlement_store)
    simulator = SimulatorConnector(latency_s=settings.simulator_latency_s)
    guard_options = GuardOptions(
        BreakerPolicy(settings.breaker_failure_threshold, settings.breaker_cooldown_s),
        settings.connector_timeout_s,
    )
    types = connector_types()
    connector_repo = PgConnectorRepository()
    directory: ConnectorDirectory
    if connectors is not None:
        directory = FixedDirectory(connectors, guard_options)
    else:
        registry = RegistryDirectory(
            uow,
            connector_repo,
            vault,
            types,
            simulator,
            guard_options,
            default_order=settings.connector_order,
            ttl_s=settings.connectors_cache_ttl_s,
            wrap=wrap_connectors,
        )
        hub.subscribe(CacheTopic.CONNECTORS, registry)
        directory = registry
    connector_service = ConnectorService(
        uow, connector_repo, vault, types, directory, auditor, clock, invalidations
    )
    # Routing and risk rule sets: one lifecycle (rulesets/), each kind its own table and cache.
    routing_kind, risk_kind = RoutingRuleKind(connector_service), RiskRuleKind(risk_conditions())
    routing_repo, risk_repo = (
        PgRuleSetRepository("routing_rule_sets"),
        PgRuleSetRepository("risk_rule_sets"),
    )
    rules_ttl_s = settings.rules_cache_ttl_s
    active_routing = ActiveRules(uow, routing_repo, routing_kind, ttl_s=rules_ttl_s)
    active_risk = ActiveRules(uow, risk_repo, risk_kind, ttl_s=rules_ttl_s)
    hub.subscribe(CacheTopic.ROUTING_RULES, active_routing)
    hub.subscribe(CacheTopic.RISK_RULES, active_risk)
    router = Router(active_routing, directory)
    routing_rules = RuleSets(
        uow, routing_repo, routing_kind, auditor, clock, invalidations, active_routing
    )
    risk_rules = RuleSets(uow, risk_repo, risk_kind, auditor, clock, invalidations, active_risk)
    payment_settings = PgPaymentSettingsRepository()
    group_commit = GroupCommit(
        db,
        max_wait_s=settings.group_commit_max_wait_ms / 1000,
        max_batch=settings.group_commit_max_batch,
    )
    gates = CachedMerchantGates(
        payment_settings, max_entries=settings.auth_cache_size, ttl_s=settings.auth_cache_ttl_s
    )
    hub.subscribe(CacheTopic.MERCHANT, gates.cache)
    events = PgEventStore()
    outbox = Outbox(events, clock)
    txlog = PgTxlogStore()
    # The one place below http that knows how the API shows things (see pyproject.toml).
    shown = ApiRepresentation()
    payments = PaymentService(
        uow,
        PgPaymentStore(),
        gates,
        vault,
        ledger,
        idempotency,
        events,
        txlog,
        shown,
        directory,
        clock,
        router=router,
        risk=RiskScreen(active_risk, PgVelocityCounter()),
        max_amount_minor=settings.payment_max_amount_minor,
        authorization_window_s=settings.authorization_window_s,
        janitor_grace_s=settings.janitor_grace_s,
        grouped=group_commit.block,
    )
    # Checkpoints are signed by the key provider's asymmetric key (never anything in the
    # database) and kept in the database and in object storage.
    chain_store = PgChainStore(db)
    copies = PgChainCopies(db)
    chains = ChainService(
        uow,
        chain_store,
        copies,
        storage,
        checkpoint_signer_for(settings),
        PublicKeyVerifier,
        lookback_s=settings.seal_lookback_s,
        checkpoint_interval_s=settings.checkpoint_interval_s,
    )
    mirror = None
    if settings.dynamodb_table:
        mirror = TxlogMirror(
            chain_store,
            copies,
            dynamodb_mirror_for(settings),
            batch_size=settings.mirror_batch_size,
        )
    custody = local_key_custody(settings)
    stl = settings.settlement
    stl_options = stl.options()
    # Its own pool, one connection per worker: a run's partitions and staging shares, several
    # at once, never wait for connections the main pool lends to requests (decision 0914).
    settlement_db = Database(database_url, min_size=0, max_size=stl_options.workers)
    settlement = SettlementService(
        uow,
        settlement_store,
        ledger,
        storage,
        lambda prefix: ReportSink(storage, prefix, storage.scratch_dir()),
        PayoutFiles(
            NachaOriginator(
                stl.nacha_odfi_routing,
                stl.nacha_company_id,
                stl.nacha_company_name,
                stl.nacha_destination_name,
            ),
            SepaDebtor(stl.sepa_debtor_name, stl.sepa_debtor_iban, stl.sepa_debtor_bic),
        ),
        VaultPayoutDestinations(vault),
        auditor,
        clock,
        table_for,
        HolidayCalendar(),
        stl_options,
        outbox,
        shown,
        work=settlement_db,
    )
    hooks = settings.webhooks
    webhooks = WebhookService(
        uow,
        PgWebhookStore(),
        events,
        vault,
        UrlGuard(
            resolver or SystemResolver(timeout_s=hooks.connect_timeout_s),
            LoopbackSwitch(
                hooks.allow_loopback,
                uow,
                keys,
                live_environment=settings.environment == "live",
            ),
        ),
        HttpxSender(
            connect_timeout_s=hooks.connect_timeout_s,
            timeout_s=hooks.timeout_s,
            max_response_bytes=hooks.max_response_bytes,
            concurrency=hooks.concurrency,
            ssl=ssl_context(hooks.ca_bundle),
        ),
        shown,
        outbox,
        auditor,
        clock,
        hooks.options(),
    )
    files = FileService(uow, PgFileStore(), storage, auditor, clock)
    disputes = DisputeService(
        uow,
        PgDisputeStore(),
        payments.disputed,
        merchants_repo,
        settlement_store,
        files,
        ledger,
        txlog,
        outbox,
        idempotency,
        auditor,
        shown,
        clock,
        max_amount_minor=settings.payment_max_amount_minor,
    )
    adjustments = AdjustmentService(
        uow,
        PgAdjustmentStore(),
        merchants_repo,
        ledger,
        txlog,
        idempotency,
        auditor,
        shown,
        clock,
        max_amount_minor=settings.payment_max_amount_minor,
    )
    reconciliation_store = PgReconciliationStore(
        statement_timeout_s=settings.reconciliation_timeout_s,
        work_mem=settings.reconciliation_work_mem,
        lookback_days=settings.reconciliation_lookback_days,
    )
    reconciliation = ReconciliationService(
        uow,
        reconciliation_store,
        disputes,
        files,
        outbox,
        auditor,
        clock,
    )
    reconciliation_queue = ExceptionQueue(
        uow, reconciliation_store, ledger, adjustments, auditor, clock
    )
    authenticator = Authenticator(
        uow,
        keys,
        auditor,
        PgAuthFailureCounter(),
        rate_limiter,
        clock,
        secret,
        LockoutPolicy(
            max_failures=settings.auth_max_failures,
            window_s=settings.auth_failure_window_s,
            lockout_s=settings.auth_lockout_s,
        ),
        caches=auth_caches,
        invalidations=invalidations,
    )
    return Container(
        settings=settings,
        db=db,
        clock=clock,
        server_secret=secret,
        auditor=auditor,
        authenticator=authenticator,
        console_sign_in=console_sign_in_for(
            settings, uow, authenticator, vault, auditor, clock, secret
        ),
        merchants=MerchantService(
            uow,
            merchants_repo,
            payment_settings,
            keys,
            auditor,
            clock,
            secret,
            settings.environment,
            invalidations,
        ),
        audit_queries=AuditQueries(uow, audit_log),
        idempotency=idempotency,
        vault=vault,
        ledger=ledger,
        payments=payments,
        payment_stats=PaymentStatistics(uow, PgPaymentStats(), clock),
        events=EventQueries(uow, events),
        chains=chains,
        simulator=simulator,
        connectors=connector_service,
        connector_directory=directory,
        idempotency_store=idempotency_store,
        settlement=settlement,
        settlement_jobs=SettlementJobs(settlement, database_url),
        storage=storage,
        mirror=mirror,
        webhooks=webhooks,
        files=files,
        disputes=disputes,
        adjustments=adjustments,
        reconciliation=reconciliation,
        reconciliation_queue=reconciliation_queue,
        bins=BinService(uow, bin_repo, invalidations, bin_directory),
        router=router,
        routing_rules=routing_rules,
        risk_rules=risk_rules,
        routing_simulations=RoutingSimulations(
            uow, PgHistory(), routing_rules, risk_rules, table_for
        ),
        key_ceremony=(
            None if custody is None else KeyCeremony(uow, custody, ComponentFiles, auditor)
        ),
        invalidations=hub,
        invalidation_listener=InvalidationListener(database_url, hub),
        cache_db=cache_db,
        settlement_db=settlement_db,
        group_commit=group_commit,
    )
