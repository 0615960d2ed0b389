"""Foundation: merchants, API keys, audit log, idempotency, rate limits.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE merchants (
    id                text PRIMARY KEY,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    country           char(2) NOT NULL,
    mcc               char(4) NOT NULL,
    default_currency  text NOT NULL,
    status            text NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'suspended', 'closed')),
    pricing           jsonb NOT NULL,
    payout_delay_days integer NOT NULL CHECK (payout_delay_days BETWEEN 0 AND 90),
    reserve           jsonb NOT NULL,
    metadata          jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('merchant', 'operator')),
    merchant_id text REFERENCES merchants (id),
    role        text CHECK (role IN ('admin', 'support', 'finance', 'security')),
    mode        text NOT NULL CHECK (mode IN ('test', 'live')),
    -- Only a keyed hash (HMAC-SHA256 with the server secret) of the secret is stored.
    secret_hash bytea NOT NULL UNIQUE,
    display     text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz,
    CHECK ((kind = 'merchant' AND merchant_id IS NOT NULL AND role IS NULL)
        OR (kind = 'operator' AND merchant_id IS NULL AND role IS NOT NULL))
);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id, id);

-- PCI DSS 10.2.2: user, event type, time, outcome, origin, affected resource; all NOT NULL.
CREATE TABLE audit_events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          text NOT NULL UNIQUE,
    actor       text NOT NULL,
    event_type  text NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL CHECK (outcome IN ('success', 'failure')),
    origin_ip   text NOT NULL,
    resource    text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_id ON audit_events (id);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

CREATE TABLE idempotency_keys (
    principal_id    text NOT NULL,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    bytea NOT NULL,
    state           text NOT NULL CHECK (state IN ('in_progress', 'completed')),
    response_status integer,
    response_body   bytea,
    -- The object the first attempt created (pay_, rfd_), written in the same transaction that
    -- created it: a retry after a crash recovers that object instead of creating another.
    resource_id     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    locked_at       timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    PRIMARY KEY (principal_id, key),
    CHECK (state = 'in_progress' OR (response_status IS NOT NULL AND response_body IS NOT NULL))
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Counters are disposable (a crash resets a window at worst), so skip the WAL.
CREATE UNLOGGED TABLE rate_limit_counters (
    key_id       text PRIMARY KEY,
    window_start bigint NOT NULL,
    count        integer NOT NULL
);
"""
    )


def downgrade() -> None:
    op.execute(
        """
DROP TABLE rate_limit_counters;
DROP TABLE idempotency_keys;
DROP TABLE audit_events;
DROP FUNCTION refuse_change();
DROP TABLE api_keys;
DROP TABLE merchants;
"""
    )
