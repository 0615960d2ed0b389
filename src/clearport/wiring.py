"""The one place that picks concrete adapters and hands them to the use cases."""

from __future__ import annotations

from dataclasses import dataclass

from clearport.adapters.connectors.simulator import SimulatorConnector  # payments (issue 5)
from clearport.adapters.postgres.audit import PgAuditLog
from clearport.adapters.postgres.database import Database
from clearport.adapters.postgres.idempotency import PgIdempotencyStore
from clearport.adapters.postgres.ledger import PgLedgerStore
from clearport.adapters.postgres.merchants import PgApiKeyRepository, PgMerchantRepository
from clearport.adapters.postgres.ratelimit import PgRateLimiter
from clearport.adapters.server_secret import load_or_create_server_secret
from clearport.app.audit import Auditor, AuditQueries
from clearport.app.auth import Authenticator
from clearport.app.clock import SystemClock
from clearport.app.idempotency import IdempotencyService
from clearport.app.ledger import LedgerService
from clearport.app.merchants import MerchantService
from clearport.app.payments import PaymentService  # payments (issue 5)
from clearport.app.ports import (
    Clock,
    IdempotencyStore,  # payments (issue 5)
)
from clearport.app.settlement import SettlementService  # settlement (issue 6)
from clearport.app.txlog import ChainService  # payments (issue 5)
from clearport.app.vault import VaultService  # vault (issue 3)
from clearport.config import Settings


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
    # --- vault (issue 3) ---
    vault: VaultService
    # --- ledger (issue 4) ---
    ledger: LedgerService
    # --- payments (issue 5) ---
    payments: PaymentService
    chains: ChainService
    simulator: SimulatorConnector
    idempotency_store: IdempotencyStore
    # --- settlement (issue 6) ---
    settlement: SettlementService

    async def start(self) -> None:
        await self.db.open()

    async def stop(self) -> None:
        await self.db.close()


def build_container(
    settings: Settings, database_url: str, *, clock: Clock | None = None
) -> Container:
    clock = clock or SystemClock()
    secret = load_or_create_server_secret(
        settings.secret_key.get_secret_value() if settings.secret_key else None,
        settings.data_dir,
    )
    db = Database(database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
    uow = db
    audit_log = PgAuditLog()
    auditor = Auditor(audit_log, clock)
    keys = PgApiKeyRepository()
    merchants_repo = PgMerchantRepository()
    rate_limiter = PgRateLimiter(
        db, limit=settings.rate_limit_requests, window_s=settings.rate_limit_window_s
    )
    # --- vault (issue 3): build here ---
    from clearport.adapters.crypto import AesGcmCipher, TtlDekCache, build_key_provider
    from clearport.adapters.postgres.vault import PgVaultRepository

    vault = VaultService(
        uow,
        PgVaultRepository(),
        merchants_repo,
        build_key_provider(
            settings.key_provider,
            keyring_path=settings.keyring_file,
            pgdata_dir=settings.pgdata_dir,
            master_key_hex=settings.master_key.get_secret_value() if settings.master_key else None,
            kms_key_id=settings.kms_key_id,
            kms_region=settings.kms_region,
            kms_endpoint_url=settings.kms_endpoint_url,
        ),
        AesGcmCipher(),
        TtlDekCache(max_entries=settings.dek_cache_size, ttl_s=settings.dek_cache_ttl_s),
        auditor,
        clock,
    )
    # --- ledger (issue 4): build here ---
    ledger = LedgerService(uow, PgLedgerStore(), clock)
    # --- payments (issue 5): build here ---
    from clearport.adapters.checkpoints import FileCheckpointStore
    from clearport.adapters.postgres.chains import PgChainStore
    from clearport.adapters.postgres.payments import PgPaymentStore

    simulator = SimulatorConnector(latency_s=settings.simulator_latency_s)
    idempotency_store = PgIdempotencyStore(db)
    idempotency = IdempotencyService(
        idempotency_store,
        secret,
        ttl_s=settings.idempotency_ttl_s,
        lock_timeout_s=settings.idempotency_lock_timeout_s,
    )
    payments = PaymentService(
        uow,
        PgPaymentStore(db),
        merchants_repo,
        vault,
        ledger,
        idempotency,
        {simulator.name: simulator},
        clock,
        max_amount_minor=settings.payment_max_amount_minor,
        connector_timeout_s=settings.connector_timeout_s,
        authorization_window_s=settings.authorization_window_s,
        janitor_grace_s=settings.janitor_grace_s,
    )
    # Checkpoints are signed with a key derived from the key provider's secret material (its
    # own instance: the vault's is private to it), never from anything in the database.
    chain_keys = build_key_provider(
        settings.key_provider,
        keyring_path=settings.keyring_file,
        pgdata_dir=settings.pgdata_dir,
        master_key_hex=settings.master_key.get_secret_value() if settings.master_key else None,
        kms_key_id=settings.kms_key_id,
        kms_region=settings.kms_region,
        kms_endpoint_url=settings.kms_endpoint_url,
    )
    chains = ChainService(
        uow,
        PgChainStore(db),
        FileCheckpointStore(settings.data_dir / "checkpoints"),
        chain_keys.fingerprint_key,
        lookback_s=settings.seal_lookback_s,
    )
    # --- settlement (issue 6): build here ---
    from clearport.adapters.interchange_tables import table_for
    from clearport.adapters.payout_destinations import VaultPayoutDestinations
    from clearport.adapters.payout_files import NachaOriginator, SepaDebtor
    from clearport.adapters.payout_files.renderer import PayoutFiles
    from clearport.adapters.postgres.settlement import PgSettlementStore
    from clearport.adapters.reports.settlement import ReportSink
    from clearport.adapters.storage.local import LocalDirectoryStorage
    from clearport.settlement_config import load_settlement_settings

    stl_cfg = load_settlement_settings()
    storage = LocalDirectoryStorage(stl_cfg.files_dir or settings.data_dir / "settlement-files")
    settlement = SettlementService(
        uow,
        PgSettlementStore(),
        ledger,
        storage,
        lambda prefix: ReportSink(storage, prefix, storage.scratch_dir()),
        PayoutFiles(
            NachaOriginator(
                stl_cfg.nacha_odfi_routing,
                stl_cfg.nacha_company_id,
                stl_cfg.nacha_company_name,
                stl_cfg.nacha_destination_name,
            ),
            SepaDebtor(stl_cfg.sepa_debtor_name, stl_cfg.sepa_debtor_iban, stl_cfg.sepa_debtor_bic),
        ),
        VaultPayoutDestinations(vault),
        auditor,
        clock,
        table_for,
        stl_cfg.options(),
    )
    return Container(
        # --- vault (issue 3): pass here ---
        vault=vault,
        # --- ledger (issue 4): pass here ---
        ledger=ledger,
        # --- payments (issue 5): pass here ---
        payments=payments,
        chains=chains,
        simulator=simulator,
        idempotency_store=idempotency_store,
        # --- settlement (issue 6): pass here ---
        settlement=settlement,
        settings=settings,
        db=db,
        clock=clock,
        server_secret=secret,
        auditor=auditor,
        authenticator=Authenticator(uow, keys, auditor, rate_limiter, clock, secret),
        merchants=MerchantService(
            uow, merchants_repo, keys, auditor, clock, secret, settings.environment
        ),
        audit_queries=AuditQueries(uow, audit_log),
        idempotency=idempotency,
    )
