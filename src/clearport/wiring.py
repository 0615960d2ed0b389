"""The one place that picks concrete adapters and hands them to the use cases.

Entry points (`http`, `worker`, `cli`) get everything from here: the container of services for
a database, and the few infrastructure steps a command needs before it has one (find or start
the database, migrate it, the keyring for the key ceremony). They never import a store or an
adapter themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clearport.core.clock import Clock, SystemClock
from clearport.core.errors import present
from clearport.core.invalidation import CacheTopic, InvalidationHub, NoCache
from clearport.db import migrate
from clearport.db.embedded import database_url_for
from clearport.vault.keyring import ComponentFiles, LocalKeyProvider
from clearport.vault.ports import KeyCustody, KeyProvider, WrappedKeys

if TYPE_CHECKING:
    from clearport.access.service import Authenticator
    from clearport.adjustments.service import AdjustmentService
    from clearport.audit.service import Auditor, AuditQueries
    from clearport.config import Settings
    from clearport.connectors.http_acquirer.host import InProcessHosts
    from clearport.connectors.ports import Connector, ConnectorDirectory
    from clearport.connectors.service import ConnectorService
    from clearport.connectors.simulator.connector import SimulatorConnector
    from clearport.db.database import Database
    from clearport.db.invalidation import InvalidationListener
    from clearport.disputes.service import DisputeService
    from clearport.events.service import EventQueries
    from clearport.files.service import FileService
    from clearport.idempotency.ports import IdempotencyStore
    from clearport.idempotency.service import IdempotencyService
    from clearport.ledger.service import LedgerService
    from clearport.merchants.service import MerchantService
    from clearport.payments.service import PaymentService
    from clearport.settlement.jobs import SettlementJobs
    from clearport.settlement.service import SettlementService
    from clearport.storage.ports import ObjectStorage
    from clearport.txlog.dynamodb import DynamoDbMirror
    from clearport.txlog.mirror import TxlogMirror
    from clearport.txlog.ports import CheckpointSigner, SignatureVerifier
    from clearport.txlog.service import ChainService
    from clearport.vault.ceremony import KeyCeremony
    from clearport.vault.service import VaultService
    from clearport.webhooks.ports import Resolver
    from clearport.webhooks.service import WebhookService


@dataclass
class Container:
    settings: Settings
    db: Database
    clock: Clock
    server_secret: bytes
    auditor: Auditor
    authenticator: Authenticator
    merchants: MerchantService
    audit_queries: AuditQueries
    idempotency: IdempotencyService
    vault: VaultService
    ledger: LedgerService
    payments: PaymentService
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
    key_ceremony: KeyCeremony | None  # the local keyring's split/combine; None with KMS
    # This process's caches by topic, and the connection that tells them what changed in other
    # processes (decision 0019).
    invalidations: InvalidationHub
    invalidation_listener: InvalidationListener

    @staticmethod
    def schema_head() -> str:
        """The migration this code expects (`/readyz` compares the database's with it)."""
        return migrate.head_revision()

    async def start(self, *, listen: bool = True) -> None:
        """Open the pool and, for a process that serves (API, worker), listen for cache
        invalidations; a one-shot command caches nothing worth a connection."""
        await self.db.open()
        if listen:
            await self.invalidation_listener.start()

    async def stop(self) -> None:
        await self.invalidation_listener.stop()
        await self.settlement_jobs.close()
        await self.connector_directory.close()
        await self.db.close()


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
    from clearport.access.server_secret import load_or_create_server_secret
    from clearport.access.service import Authenticator
    from clearport.access.store import PgApiKeyRepository, PgAuthFailureCounter, PgRateLimiter
    from clearport.adjustments.service import AdjustmentService
    from clearport.adjustments.store import PgAdjustmentStore
    from clearport.audit.service import Auditor, AuditQueries
    from clearport.audit.store import PgAuditLog
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
    from clearport.merchants.service import MerchantService
    from clearport.merchants.store import PgMerchantRepository, PgPaymentSettingsRepository
    from clearport.payments.service import PaymentService
    from clearport.payments.store import PgPaymentStore
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
    # Key material wrapped by KMS lives in the database, so every machine shares it.
    key_provider = key_provider_for(settings, shared=PgWrappedKeys(db))
    storage = object_storage_for(settings)
    invalidations = PgInvalidations()
    hub = InvalidationHub()
    audit_log = PgAuditLog()
    auditor = Auditor(audit_log, clock)
    keys = PgApiKeyRepository()
    merchants_repo = PgMerchantRepository()
    rate_limiter = PgRateLimiter(
        db, limit=settings.rate_limit_requests, window_s=settings.rate_limit_window_s
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
    )
    hub.subscribe(CacheTopic.DATA_KEYS, vault.cached_data_keys)
    # API keys are read on every request today (decision 0002): the hot-path cache subscribes
    # here when it exists; the announcements are published already.
    hub.subscribe(CacheTopic.API_KEY, NoCache())
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
    idempotency_store = PgIdempotencyStore(db)
    idempotency = IdempotencyService(
        idempotency_store,
        secret,
        ttl_s=settings.idempotency_ttl_s,
        lock_timeout_s=settings.idempotency_lock_timeout_s,
    )
    payment_settings = PgPaymentSettingsRepository()
    events = PgEventStore()
    outbox = Outbox(events, clock)
    txlog = PgTxlogStore()
    # The one place below http that knows how the API shows things (see pyproject.toml).
    shown = ApiRepresentation()
    payments = PaymentService(
        uow,
        PgPaymentStore(),
        payment_settings,
        vault,
        ledger,
        idempotency,
        events,
        txlog,
        shown,
        directory,
        clock,
        max_amount_minor=settings.payment_max_amount_minor,
        authorization_window_s=settings.authorization_window_s,
        janitor_grace_s=settings.janitor_grace_s,
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
        stl.options(),
        outbox,
        shown,
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
    return Container(
        settings=settings,
        db=db,
        clock=clock,
        server_secret=secret,
        auditor=auditor,
        authenticator=Authenticator(
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
        events=EventQueries(uow, events),
        chains=chains,
        simulator=simulator,
        connectors=ConnectorService(
            uow, connector_repo, vault, types, directory, auditor, clock, invalidations
        ),
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
        key_ceremony=(
            None if custody is None else KeyCeremony(uow, custody, ComponentFiles, auditor)
        ),
        invalidations=hub,
        invalidation_listener=InvalidationListener(database_url, hub),
    )


# --- keys ------------------------------------------------------------------------------------


def build_key_provider(
    kind: str,
    *,
    keyring_path: Path,
    pgdata_dir: Path,
    master_key_hex: str | None,
    kms_key_id: str | None,
    kms_region: str | None,
    kms_endpoint_url: str | None,
    shared: WrappedKeys | None = None,
) -> KeyProvider:
    keyring = keyring_path.resolve()
    if keyring.is_relative_to(pgdata_dir.resolve()):
        raise ValueError("The keyring must not live inside the database directory.")
    if kind == "local":
        master = bytes.fromhex(master_key_hex) if master_key_hex else None
        if master is not None and len(master) != 32:
            raise ValueError("CLEARPORT_MASTER_KEY must be 64 hex digits (256 bits).")
        return LocalKeyProvider(keyring_path, master_key=master)
    if kind == "aws-kms":
        # Here rather than at the top: boto3 takes longer to import than the rest of the key
        # ceremony (`clearport keys split`) takes to run, and the local keyring never needs it.
        from clearport.vault.kms import AwsKmsKeyProvider

        if not kms_key_id:
            raise ValueError("CLEARPORT_KMS_KEY_ID is required with the aws-kms key provider.")
        return AwsKmsKeyProvider(
            kms_key_id,
            region=kms_region,
            keyring_path=keyring_path,
            endpoint_url=kms_endpoint_url,
            shared=shared,
        )
    raise ValueError(f"unknown key provider {kind!r}")


def key_provider_for(
    settings: Settings, *, kind: str | None = None, shared: WrappedKeys | None = None
) -> KeyProvider:
    return build_key_provider(
        kind or settings.key_provider,
        keyring_path=settings.keyring_file,
        pgdata_dir=settings.pgdata_dir,
        master_key_hex=settings.master_key.get_secret_value() if settings.master_key else None,
        kms_key_id=settings.kms_key_id,
        kms_region=settings.kms_region,
        kms_endpoint_url=settings.kms_endpoint_url,
        shared=shared,
    )


def checkpoint_signer_for(settings: Settings) -> CheckpointSigner:
    """The key that signs txlog checkpoints: the local keyring's Ed25519 key, or the KMS
    signing key (CLEARPORT_KMS_SIGNING_KEY_ID) with the `aws-kms` provider."""
    if settings.key_provider == "aws-kms":
        from clearport.vault.kms import KmsCheckpointSigner

        if not settings.kms_signing_key_id:
            raise ValueError(
                "CLEARPORT_KMS_SIGNING_KEY_ID (an ECC_NIST_P256 SIGN_VERIFY key) is required with "
                "the aws-kms key provider: it signs the transaction-log checkpoints."
            )
        return KmsCheckpointSigner(
            settings.kms_signing_key_id,
            region=settings.kms_region,
            endpoint_url=settings.kms_endpoint_url,
        )
    from clearport.txlog.signatures import Ed25519CheckpointSigner

    provider = key_provider_for(settings, kind="local")
    if not isinstance(provider, LocalKeyProvider):  # pragma: no cover - build_key_provider
        raise TypeError("the local key provider is a LocalKeyProvider")
    return Ed25519CheckpointSigner(provider.signing_key)


def checkpoint_verifier(public_key_pem: bytes) -> SignatureVerifier:
    """A verifier of checkpoints for one public key (PEM or DER); ValueError if unusable."""
    from clearport.txlog.signatures import PublicKeyVerifier

    return PublicKeyVerifier(public_key_pem)


def object_storage_for(settings: Settings) -> ObjectStorage:
    if settings.storage == "s3":
        from clearport.storage.s3 import S3Storage

        if not settings.s3_bucket:
            raise ValueError("CLEARPORT_S3_BUCKET is required with CLEARPORT_STORAGE=s3.")
        return S3Storage(
            settings.s3_bucket,
            prefix=settings.s3_prefix,
            region=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url,
            kms_key_id=settings.s3_kms_key_id,
            multipart_threshold_bytes=settings.s3_multipart_threshold_bytes,
            part_size_bytes=settings.s3_part_size_bytes,
            scratch_dir=settings.data_dir / "scratch",
        )
    from clearport.storage.local import LocalDirectoryStorage

    return LocalDirectoryStorage(settings.storage_root)


def dynamodb_mirror_for(settings: Settings) -> DynamoDbMirror:
    from clearport.txlog.dynamodb import DynamoDbMirror

    return DynamoDbMirror(
        present(settings.dynamodb_table, "the mirror is configured"),
        region=settings.dynamodb_region,
        endpoint_url=settings.dynamodb_endpoint_url,
    )


async def bootstrap_cloud(settings: Settings) -> list[str]:
    """Create what the settings name in AWS and is missing: the S3 bucket, the DynamoDB table,
    the KMS keys behind aliases. For moto (compose) and a first set-up; what was created."""
    created: list[str] = []
    if settings.storage == "s3":
        from clearport.storage.s3 import S3Storage

        storage = object_storage_for(settings)
        if isinstance(storage, S3Storage) and await storage.create_bucket():
            created.append(f"S3 bucket {storage.bucket}")
    if settings.dynamodb_table:
        import asyncio

        if await asyncio.to_thread(dynamodb_mirror_for(settings).create_table):
            created.append(f"DynamoDB table {settings.dynamodb_table}")
    if settings.key_provider == "aws-kms":
        from clearport.vault.kms import ensure_kms_alias

        for alias, signing in ((settings.kms_key_id, False), (settings.kms_signing_key_id, True)):
            if alias and await ensure_kms_alias(
                alias,
                signing=signing,
                region=settings.kms_region,
                endpoint_url=settings.kms_endpoint_url,
            ):
                created.append(f"KMS key {alias}")
    return created


def local_key_custody(settings: Settings) -> KeyCustody | None:
    """The local keyring's master key for `keys split|combine`; None with another provider."""
    if settings.key_provider != "local":
        return None
    provider = key_provider_for(settings, kind="local")
    if not isinstance(provider, LocalKeyProvider):  # pragma: no cover - build_key_provider
        raise TypeError("the local key provider is a LocalKeyProvider")
    return provider


# --- the database, before there is a container -----------------------------------------------


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured database, or the embedded server started (and stopped) around the block."""
    with database_url_for(settings.database_url, settings.pgdata_dir) as url:
        yield url


def upgrade_database(url: str) -> None:
    migrate.upgrade(url)


def schema_head() -> str:
    return migrate.head_revision()


def is_migrated(url: str) -> bool:
    return migrate.is_migrated(url)


# --- the connector simulators (`clearport simulate`), processes of their own ----------------


def in_process_hosts(database_url: str, schema: str, names: tuple[str, ...]) -> InProcessHosts:
    """Simulated HTTP acquirer hosts served in this process, for the money simulation."""
    from clearport.connectors.http_acquirer.host import InProcessHosts

    return InProcessHosts(database_url, schema, names)


def serve_simulator(
    kind: str,
    *,
    host: str,
    port: int,
    database_url: str,
    name: str,
    schema: str | None,
    api_key: str | None,
    latency_ms: int,
    error_rate: float,
    timeout_rate: float,
    silent: bool,
    malformed: str | None,
    seed: int | None,
) -> None:
    """Run the `http` or `iso8583` simulator host until it is stopped."""
    from clearport.connectors.processor_sim.processor import Faults

    faults = Faults(
        latency_ms=latency_ms,
        error_rate=error_rate,
        timeout_rate=timeout_rate,
        silent=silent,
        seed=seed,
    )
    if kind == "http":
        from clearport.connectors.http_acquirer import host as http_host

        http_host.serve(
            http_host.HttpHostOptions(
                database_url,
                schema=schema or "simulator_http",
                name=name,
                api_key=api_key,
                faults=faults,
            ),
            host,
            port,
        )
        return
    if kind == "iso8583":
        from clearport.connectors.iso8583 import host as iso_host

        iso_host.serve(
            iso_host.IsoHostOptions(
                database_url,
                schema=schema or "simulator_iso8583",
                name=name,
                faults=faults,
                malformed=None if malformed is None else iso_host.Malformation(malformed),
            ),
            host,
            port,
        )
        return
    raise ValueError(f"unknown simulator {kind!r}")
