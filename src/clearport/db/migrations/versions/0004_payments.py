"""Payments schema (issue 5): payments, attempts, refunds, the transaction log and its seals, the
outbox of events, and per-merchant payment settings.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE merchant_payment_settings (
    merchant_id  text PRIMARY KEY REFERENCES merchants (id),
    require_cvc  boolean NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payments (
    id                    text PRIMARY KEY,
    merchant_id           text NOT NULL REFERENCES merchants (id),
    amount                bigint NOT NULL CHECK (amount > 0),
    currency              text NOT NULL,
    status                text NOT NULL CHECK (status IN ('pending', 'authorized', 'captured',
                              'refunded', 'voided', 'expired', 'declined', 'failed')),
    capture_requested     boolean NOT NULL,
    amount_captured       bigint NOT NULL DEFAULT 0,
    amount_refunded       bigint NOT NULL DEFAULT 0,
    -- Refunds sent to the connector whose answer is not in yet: they count against what is
    -- left to refund, so two concurrent refunds can never exceed the captured amount.
    amount_refund_pending bigint NOT NULL DEFAULT 0,
    -- 'capture' or 'void' while that call is out at the connector; a second one is refused.
    pending_operation     text CHECK (pending_operation IN ('capture', 'void', 'expire')),
    card_brand            text NOT NULL,
    card_bin              text NOT NULL,
    card_last4            text NOT NULL,
    card_exp_month        integer NOT NULL,
    card_exp_year         integer NOT NULL,
    card_fingerprint      text NOT NULL,
    token_id              text NOT NULL,
    auth_attempt_id       text NOT NULL,
    auth_code             text,
    network_reference     text,
    decline_code          text,
    connector             text NOT NULL,
    routing               jsonb NOT NULL,
    reference             text,
    metadata              jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    authorized_at         timestamptz,
    captured_at           timestamptz,
    CHECK (amount_captured BETWEEN 0 AND amount),
    CHECK (amount_refunded >= 0 AND amount_refund_pending >= 0),
    CHECK (amount_refunded + amount_refund_pending <= amount_captured)
);
CREATE INDEX payments_merchant ON payments (merchant_id, id);
CREATE INDEX payments_merchant_reference ON payments (merchant_id, reference)
    WHERE reference IS NOT NULL;
CREATE INDEX payments_status ON payments (status, id);
CREATE INDEX payments_authorized ON payments (authorized_at) WHERE status = 'authorized';

CREATE TABLE refunds (
    id          text PRIMARY KEY,
    payment_id  text NOT NULL REFERENCES payments (id),
    merchant_id text NOT NULL REFERENCES merchants (id),
    amount      bigint NOT NULL CHECK (amount > 0),
    currency    text NOT NULL,
    status      text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason      text,
    attempt_id  text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX refunds_merchant ON refunds (merchant_id, id);
CREATE INDEX refunds_payment ON refunds (payment_id, id);

-- One row per call to a connector. The row is committed as 'pending' before the call, so the
-- janitor can always find out what happened to a call whose answer never arrived.
CREATE TABLE payment_attempts (
    id                  text PRIMARY KEY,
    payment_id          text NOT NULL REFERENCES payments (id),
    merchant_id         text NOT NULL,
    operation           text NOT NULL CHECK (operation IN
                            ('authorize', 'capture', 'void', 'refund', 'expire')),
    refund_id           text,
    amount              bigint NOT NULL CHECK (amount >= 0),
    currency            text NOT NULL,
    connector           text NOT NULL,
    status              text NOT NULL CHECK (status IN
                            ('pending', 'succeeded', 'declined', 'failed')),
    response_code       text,
    decline_code        text,
    auth_code           text,
    network_reference   text,
    created_at          timestamptz NOT NULL,
    completed_at        timestamptz
);
CREATE INDEX payment_attempts_payment ON payment_attempts (payment_id);
CREATE INDEX payment_attempts_pending ON payment_attempts (created_at) WHERE status = 'pending';

-- The transaction log: every state change of every payment and refund. Append-only; the hash
-- chain over it lives in chain_seals (written by the worker's sealer, never in the request path).
CREATE TABLE txlog (
    seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    object_type      text NOT NULL CHECK (object_type IN ('payment', 'refund')),
    object_id        text NOT NULL,
    payment_id       text NOT NULL,
    merchant_id      text NOT NULL,
    from_status      text,
    to_status        text NOT NULL,
    amount           bigint NOT NULL,
    currency         text NOT NULL,
    actor            text NOT NULL,
    connector_result jsonb,
    occurred_at      timestamptz NOT NULL
);
CREATE INDEX txlog_object ON txlog (object_id, seq);
CREATE TRIGGER txlog_append_only BEFORE UPDATE OR DELETE ON txlog
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER txlog_no_truncate BEFORE TRUNCATE ON txlog
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Hash chains over append-only tables ('txlog', 'audit'), in seal order: seq is the position in
-- the chain, source_seq the sealed row. hash = SHA-256(previous hash || seq || source_seq ||
-- canonical row). Kept apart so the sealed tables are only ever read, never updated.
CREATE TABLE chain_seals (
    chain      text NOT NULL CHECK (chain IN ('txlog', 'audit')),
    seq        bigint NOT NULL CHECK (seq > 0),
    source_seq bigint NOT NULL,
    hash       bytea NOT NULL,
    sealed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, seq),
    UNIQUE (chain, source_seq)
);
CREATE TRIGGER chain_seals_append_only BEFORE UPDATE OR DELETE ON chain_seals
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- The outbox: one event per state change, written in the state change's transaction.
CREATE TABLE events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          text NOT NULL UNIQUE,
    merchant_id text NOT NULL,
    type        text NOT NULL,
    object_id   text NOT NULL,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX events_merchant ON events (merchant_id, id);
CREATE INDEX events_object ON events (object_id, seq);
"""
    )


def downgrade() -> None:
    op.execute(
        """
DROP TABLE events;
DROP TABLE chain_seals;
DROP TABLE txlog;
DROP TABLE payment_attempts;
DROP TABLE refunds;
DROP TABLE payments;
DROP TABLE merchant_payment_settings;
"""
    )
