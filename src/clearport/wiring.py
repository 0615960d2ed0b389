"""The one place that picks concrete adapters and hands them to the use cases."""

from __future__ import annotations

from dataclasses import dataclass

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
from clearport.app.ports import Clock
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
    # --- settlement (issue 6) ---

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
    # --- settlement (issue 6): build here ---
    return Container(
        # --- vault (issue 3): pass here ---
        vault=vault,
        # --- ledger (issue 4): pass here ---
        ledger=ledger,
        # --- payments (issue 5): pass here ---
        # --- settlement (issue 6): pass here ---
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
        idempotency=IdempotencyService(
            PgIdempotencyStore(db),
            secret,
            ttl_s=settings.idempotency_ttl_s,
            lock_timeout_s=settings.idempotency_lock_timeout_s,
        ),
    )
