"""Webhooks' settings, from the environment with prefix CLEARPORT_WEBHOOKS_.

Webhooks own their knobs; `config.Settings.webhooks` carries them with the rest.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from clearport.webhooks.domain import RetryPolicy, WebhookOptions


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLEARPORT_WEBHOOKS_", extra="ignore")

    # Development only: allow http and loopback URLs (never private, link-local or metadata
    # addresses). Refused while live keys exist or CLEARPORT_ENVIRONMENT=live.
    allow_loopback: bool = False
    # Each delivery: connecting (and resolving) within connect_timeout_s, all of it within
    # timeout_s; at most max_response_bytes of the answer are read.
    connect_timeout_s: float = Field(default=3.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    max_response_bytes: int = Field(default=65_536, ge=1)
    # At most this many requests in flight per endpoint, and per worker process overall.
    endpoint_concurrency: int = Field(default=4, ge=1, le=64)
    concurrency: int = Field(default=32, ge=1, le=1024)
    # Deliveries one job claims at a time for an endpoint.
    batch_size: int = Field(default=20, ge=1, le=500)
    # Exponential backoff with jitter from retry_base_s, capped at retry_cap_s, for
    # retry_window_s after the event; an endpoint failing that long is disabled.
    retry_base_s: float = Field(default=30.0, gt=0)
    retry_cap_s: float = Field(default=6 * 3600.0, gt=0)
    retry_window_s: float = Field(default=3 * 86_400.0, gt=0)
    disable_after_s: float = Field(default=3 * 86_400.0, gt=0)
    # rotate_secret keeps the previous secret signing this long unless told otherwise.
    rotation_overlap_s: int = Field(default=86_400, ge=0, le=7 * 86_400)
    # How often the worker moves new events to their endpoints, and how many at a time.
    relay_interval_s: float = Field(default=0.1, gt=0)
    relay_batch: int = Field(default=1000, ge=1)
    # Retention: delivery attempts (and finished deliveries) are purged after this many days;
    # events are kept unless events_retention_days is set (the ledger refers to them).
    attempts_retention_days: int = Field(default=30, ge=1)
    events_retention_days: int | None = Field(default=None, ge=1)
    # Extra certificate authorities to trust for receivers (a PEM file), beyond certifi's.
    ca_bundle: Path | None = None

    def options(self) -> WebhookOptions:
        return WebhookOptions(
            batch_size=self.batch_size,
            endpoint_concurrency=self.endpoint_concurrency,
            timeout_s=self.timeout_s,
            retry=RetryPolicy(self.retry_base_s, self.retry_cap_s, self.retry_window_s),
            disable_after_s=self.disable_after_s,
            rotation_overlap_s=self.rotation_overlap_s,
            attempts_retention_s=self.attempts_retention_days * 86_400.0,
            events_retention_s=(
                None
                if self.events_retention_days is None
                else max(self.events_retention_days, self.attempts_retention_days) * 86_400.0
            ),
        )
