"""Webhooks (issue 12): platform events, the relay's queue, endpoints, deliveries and their
attempts, and secrets sealed by the vault for any owner (a merchant or the platform).

Revision ID: 0009
Revises: 0011
"""

from alembic import op

from clearport.db.migrate import stored_sql

revision = "0009"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
-- Platform events (settlement_run.completed, reconciliation.completed) belong to no merchant.
-- Events are listed by sequence, never by id: the merchant's index follows `seq`.
ALTER TABLE events ALTER COLUMN merchant_id DROP NOT NULL;
DROP INDEX events_merchant;
CREATE INDEX events_merchant_seq ON events (merchant_id, seq);

-- Events not yet fanned out to webhook endpoints. Filled by a trigger on `events`
-- (db/sql/events_relay_enqueue.v1.sql), emptied by the relay, which claims rows with SKIP
-- LOCKED: an event whose transaction commits late, with a lower sequence than events already
-- relayed, is still here when it becomes visible (no high-water mark to read past it).
CREATE TABLE event_relay_queue (seq bigint PRIMARY KEY);

-- The vault seals secrets for the platform as well as for merchants: DEKs of the owner
-- 'platform' reference no merchant; every other owner must be a merchant.
ALTER TABLE vault_deks DROP CONSTRAINT vault_deks_merchant_id_fkey;
ALTER TABLE vault_deks ADD COLUMN merchant_ref text
    GENERATED ALWAYS AS (NULLIF(merchant_id, 'platform')) STORED REFERENCES merchants (id);

-- Secrets a feature must use, not only check (webhook signing secrets): AES-256-GCM under the
-- owner's DEK, associated data binding owner, kind, id and DEK version, like cards.
CREATE TABLE vault_secrets (
    id          text PRIMARY KEY,
    owner_id    text NOT NULL,
    purpose     text NOT NULL,
    dek_version integer NOT NULL,
    nonce       bytea NOT NULL CHECK (length(nonce) = 12),
    ciphertext  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (owner_id, dek_version) REFERENCES vault_deks (merchant_id, version)
);
CREATE INDEX vault_secrets_owner_version ON vault_secrets (owner_id, dek_version, id);

-- A merchant's endpoint (merchant_id set) receives the merchant's events; a platform endpoint
-- (merchant_id NULL) the platform's. Deleted endpoints keep their row for the delivery log.
CREATE TABLE webhook_endpoints (
    id              text PRIMARY KEY,
    merchant_id     text REFERENCES merchants (id),
    url             text NOT NULL,
    description     text,
    enabled_events  text[] NOT NULL CHECK (cardinality(enabled_events) >= 1),
    status          text NOT NULL CHECK (status IN ('enabled', 'disabled')),
    disabled_reason text,
    -- The first failed attempt since the last success: three days of failure disable it.
    failing_since   timestamptz,
    -- One delivery job at a time per endpoint: who holds it, until when (a dead worker's
    -- lease runs out and another job takes over).
    lease_owner     text,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz
);
CREATE INDEX webhook_endpoints_owner
    ON webhook_endpoints ((coalesce(merchant_id, '')), id) WHERE deleted_at IS NULL;

-- An endpoint's signing secrets (sealed in vault_secrets): the current one (expires_at NULL)
-- and, after a rotation, the previous one until its expiry; both sign meanwhile.
CREATE TABLE webhook_endpoint_secrets (
    endpoint_id text NOT NULL REFERENCES webhook_endpoints (id),
    secret_id   text NOT NULL REFERENCES vault_secrets (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    PRIMARY KEY (endpoint_id, secret_id)
);
CREATE UNIQUE INDEX webhook_endpoint_secrets_current
    ON webhook_endpoint_secrets (endpoint_id) WHERE expires_at IS NULL;

-- One event to one endpoint, until it succeeds or its three days run out. A redelivery asked
-- for through the API is a row of its own. No foreign key to events: an event outlives its
-- deliveries only while retention keeps it, and the purge skips events still being delivered.
CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id),
    event_seq       bigint NOT NULL,
    event_id        text NOT NULL,
    status          text NOT NULL
                    CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    deadline_at     timestamptz NOT NULL,
    redelivery      boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    CHECK ((status = 'pending') = (finished_at IS NULL))
);
-- The relay creates each (endpoint, event) once, whoever relays it.
CREATE UNIQUE INDEX webhook_deliveries_once
    ON webhook_deliveries (endpoint_id, event_seq) WHERE NOT redelivery;
-- What is due per endpoint (the delivery job's claim, the sweeper's look for due endpoints).
CREATE INDEX webhook_deliveries_due
    ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
-- The oldest event not delivered yet (a metric), and events the purge must keep.
CREATE INDEX webhook_deliveries_pending_event
    ON webhook_deliveries (event_seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_finished
    ON webhook_deliveries (finished_at) WHERE status <> 'pending';

-- Every attempt (GET /v1/webhook_endpoints/{id}/deliveries): what was answered, never the
-- body that was sent nor what the receiver answered.
CREATE TABLE webhook_delivery_attempts (
    id            text PRIMARY KEY,
    delivery_id   bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    endpoint_id   text NOT NULL,
    event_id      text NOT NULL,
    attempt       integer NOT NULL CHECK (attempt >= 1),
    status_code   integer,
    error         text,
    duration_ms   integer NOT NULL CHECK (duration_ms >= 0),
    next_retry_at timestamptz,
    created_at    timestamptz NOT NULL
);
CREATE INDEX webhook_delivery_attempts_endpoint ON webhook_delivery_attempts (endpoint_id, id);
CREATE INDEX webhook_delivery_attempts_delivery ON webhook_delivery_attempts (delivery_id);
CREATE INDEX webhook_delivery_attempts_created ON webhook_delivery_attempts (created_at);
"""
    )
    op.execute(stored_sql("events_relay_enqueue.v1"))


def downgrade() -> None:
    op.execute(
        """
DROP TRIGGER events_relay_enqueue ON events;
DROP FUNCTION events_relay_enqueue();
DROP TABLE webhook_delivery_attempts, webhook_deliveries, webhook_endpoint_secrets,
    webhook_endpoints, vault_secrets, event_relay_queue;
ALTER TABLE vault_deks DROP COLUMN merchant_ref;
ALTER TABLE vault_deks ADD CONSTRAINT vault_deks_merchant_id_fkey
    FOREIGN KEY (merchant_id) REFERENCES merchants (id);
DROP INDEX events_merchant_seq;
CREATE INDEX events_merchant ON events (merchant_id, id);
ALTER TABLE events ALTER COLUMN merchant_id SET NOT NULL;
"""
    )
