"""Settings from the environment. Every variable is listed in the README."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from clearport.core.money import per_currency_caps
from clearport.settlement.settings import SettlementSettings
from clearport.webhooks.settings import WebhookSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLEARPORT_", extra="ignore")

    # Where the embedded database, the keyring and checkpoints live.
    data_dir: Path = Path(".clearport")
    # PostgreSQL URL; when unset an embedded PostgreSQL is started in `data_dir/pgdata`.
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    db_pool_min: int = 2
    db_pool_max: int = 20
    # Server secret for keyed hashes of API keys and idempotent request bodies. When unset, one
    # is generated into `data_dir/server_secret` (mode 0600) on first start.
    secret_key: SecretStr | None = None
    environment: Literal["test", "live"] = "test"
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    # Requests per key per window, shared by every API process (decision 0911): each process
    # counts in memory and exchanges counts with the others every rate_limit_sync_s through an
    # UNLOGGED PostgreSQL table; no request waits for it. A window may admit up to
    # (processes - 1) x (one process's requests in one exchange interval) beyond the limit.
    rate_limit_requests: int = 1000
    rate_limit_window_s: int = Field(default=1, ge=1)
    rate_limit_sync_s: float = Field(default=0.05, gt=0, le=1)
    # The authorization path's caches (decision 0910): API keys by their keyed hash, lockouts
    # and merchants' status and payment settings, at most this many entries each, trusted this
    # long without an announcement (LISTEN/NOTIFY evicts a changed entry from every process).
    auth_cache_size: int = Field(default=10_000, ge=1)
    auth_cache_ttl_s: float = Field(default=5.0, gt=0)
    # Group commit (decision 0912): a process's concurrent second writes of authorizations
    # share one transaction and one commit, each answered only after that commit; a batch waits
    # at most this long for company (0 turns it off: every write commits on its own) and holds
    # at most group_commit_max_batch writes.
    group_commit_max_wait_ms: float = Field(default=2.0, ge=0, le=50)
    group_commit_max_batch: int = Field(default=32, ge=1, le=1000)
    # PCI DSS 8.3.4: this many failed authentications from one address (an IPv6 /64) within
    # the window lock it out for the lockout period, valid keys included (at most 10, at least
    # 1800 s to comply). Counted in PostgreSQL, shared by every API process.
    auth_max_failures: int = Field(default=10, ge=1)
    auth_failure_window_s: int = Field(default=1800, ge=1)
    auth_lockout_s: int = Field(default=1800, ge=1)
    # The operator console (/console): sessions end after console_idle_s without a request
    # (15 minutes) or console_lifetime_s after sign-in; console_max_failures wrong TOTP codes
    # lock the operator key out for console_lockout_s. Cookies are `Secure` unless
    # console_cookie_secure is false (tests over plain HTTP on loopback only).
    console_idle_s: int = Field(default=900, ge=1)
    console_lifetime_s: int = Field(default=12 * 3600, ge=1)
    console_max_failures: int = Field(default=10, ge=1, le=10)
    console_lockout_s: int = Field(default=1800, ge=1800)
    console_cookie_secure: bool = True
    max_body_bytes: int = 65_536
    idempotency_ttl_s: int = 86_400
    # How long an in-progress idempotency claim blocks retries before it is considered abandoned.
    idempotency_lock_timeout_s: int = 60
    # Key provider for card data. `local`: a keyring file (CLEARPORT_KEYRING, default
    # data_dir/keyring/keyring.json, never inside pgdata) sealed by a master key from
    # CLEARPORT_MASTER_KEY (hex) or master.key beside it. `aws-kms`: KMS key id/ARN/alias.
    key_provider: Literal["local", "aws-kms"] = "local"
    keyring_path: Path | None = Field(default=None, validation_alias="CLEARPORT_KEYRING")
    master_key: SecretStr | None = None
    kms_key_id: str | None = None
    kms_region: str | None = None
    kms_endpoint_url: str | None = None
    # Transaction-log checkpoints are signed by the key provider: Ed25519 in the local keyring,
    # or this asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY) with `aws-kms`.
    kms_signing_key_id: str | None = None
    # A new checkpoint once the last is this old (and at every `txlog seal`).
    checkpoint_interval_s: float = Field(default=10.0, ge=0)
    # Object storage (reports, payout files, evidence, txlog exports and checkpoints): `local`
    # is a directory (storage_dir, default data_dir/objects); `s3` a bucket.
    storage: Literal["local", "s3"] = "local"
    storage_dir: Path | None = None
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_region: str | None = None
    s3_endpoint_url: str | None = None
    # Server-side encryption of every object with this KMS key (id, ARN or alias) when set.
    s3_kms_key_id: str | None = None
    # Files larger than this go up as multipart uploads in parts of s3_part_size_bytes.
    s3_multipart_threshold_bytes: int = Field(default=64 << 20, ge=5 << 20)
    s3_part_size_bytes: int = Field(default=16 << 20, ge=5 << 20)
    # The DynamoDB mirror of the transaction log: off unless a table is named.
    dynamodb_table: str | None = None
    dynamodb_region: str | None = None
    dynamodb_endpoint_url: str | None = None
    # Entries per mirror batch; the worker's mirror loop runs every worker_interval_s.
    mirror_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Unwrapped DEKs kept in memory per process: at most this many, each this long.
    dek_cache_size: int = 10_000
    dek_cache_ttl_s: float = 300.0
    # Largest amount one payment, dispute or adjustment may carry, per currency in its minor
    # units: JSON such as {"usd": 50000000}; currencies not named keep their default (about one
    # million US dollars, core/money.py).
    payment_max_amount_minor: dict[str, int] = Field(default_factory=dict, validate_default=True)
    # Authorizations not captured within this window are voided and marked `expired`.
    authorization_window_s: int = 7 * 86_400
    # Outer bound on every connector call (each connector has its own, shorter, connect and
    # read timeouts in its settings); no answer in time is a timeout: reversed, failed over.
    connector_timeout_s: float = 10.0
    # While no routing rule set is active: the connectors a payment may use, in order
    # (comma-separated names; the built-in in-process simulator is `simulator`). Unset: every
    # enabled registered connector, oldest first, or the built-in simulator when none is
    # registered.
    connectors_default_order: str | None = None
    # How long a process trusts its copy of the registered connectors without an announcement.
    connectors_cache_ttl_s: float = Field(default=30.0, gt=0)
    # The same for the active routing and risk rule sets and the BIN table.
    rules_cache_ttl_s: float = Field(default=30.0, gt=0)
    # Per connector and process: this many technical failures in a row open its circuit
    # breaker; after the cool-down one trial call decides (docs/decisions/0502).
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = Field(default=30.0, ge=0)
    # The simulator connector's artificial latency per call.
    simulator_latency_s: float = 0.0
    # Attempts still `pending` after this long are resolved by the janitor.
    janitor_grace_s: int = 60
    # Seconds between worker passes; rows per batch for each job.
    worker_interval_s: float = 1.0
    worker_batch_size: int = 500
    # `clearport worker` serves its Prometheus metrics (webhook deliveries, backlog) on this
    # port when set.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65_535)
    # Rows younger than this may still be joined by rows of older, slower transactions, so the
    # sealer re-scans them for late arrivals (see docs/decisions/0302).
    seal_lookback_s: int = 60
    # CLEARPORT_SETTLEMENT_*: cutoff, time zone, partitions, payout file originators.
    settlement: SettlementSettings = Field(default_factory=SettlementSettings)
    # Reconciliation (docs/reconciliation.md): a run's statements may take minutes on a 10 M-row
    # file; its grouping gets this much memory per hash table before it spills to disk; Clearport's
    # items this many days before a file's first settlement date are still matched by it.
    reconciliation_timeout_s: float = Field(default=3600.0, gt=0)
    reconciliation_work_mem: str = Field(default="256MB", pattern=r"^[0-9]{1,6}(kB|MB|GB)$")
    reconciliation_lookback_days: int = Field(default=30, ge=0, le=400)
    # CLEARPORT_WEBHOOKS_*: timeouts, concurrency, retries, retention, the loopback switch.
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

    @field_validator("payment_max_amount_minor")
    @classmethod
    def _caps_per_currency(cls, value: dict[str, int]) -> dict[str, int]:
        return per_currency_caps(value)

    @property
    def connector_order(self) -> tuple[str, ...] | None:
        if self.connectors_default_order is None:
            return None
        return tuple(n.strip() for n in self.connectors_default_order.split(",") if n.strip())

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def storage_root(self) -> Path:
        # CLEARPORT_SETTLEMENT_FILES_DIR is the older name of the same directory.
        return self.storage_dir or self.settlement.files_dir or self.data_dir / "objects"

    @property
    def keyring_file(self) -> Path:
        return self.keyring_path or self.data_dir / "keyring" / "keyring.json"


def load_settings() -> Settings:
    return Settings()
