"""The operator console (issue 20, decisions 1000-1003): TOTP enrolments, server-side sessions,
and the indexes the console's payment search and detail need (BIN + last 4,
fingerprint, ledger entries by source, webhook deliveries by event).

Lockouts per operator key reuse `auth_failures` (subject `operator_key:<key id>`).

Revision ID: 0017
Revises: 0012
"""

from alembic import op

revision = "0017"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
-- One TOTP secret per operator key. The secret itself is sealed by the vault (envelope
-- encryption, owner 'platform', purpose 'totp'): this row holds only the sealed secret's id.
CREATE TABLE operator_totp (
    key_id      text PRIMARY KEY REFERENCES api_keys (id),
    secret_id   text NOT NULL,
    status      text NOT NULL CHECK (status IN ('pending', 'enrolled')),
    created_at  timestamptz NOT NULL,
    enrolled_at timestamptz,
    -- The last TOTP time step accepted: a code is good for one sign-in only.
    last_step   bigint NOT NULL DEFAULT 0
);

-- Console sessions, server-side. The cookie carries a random token; only its keyed hash is
-- stored, so a read of this table signs nobody in.
CREATE TABLE operator_sessions (
    token_hash   bytea PRIMARY KEY,
    key_id       text NOT NULL REFERENCES api_keys (id),
    stage        text NOT NULL CHECK (stage IN ('enrolling', 'active')),
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX operator_sessions_expires ON operator_sessions (expires_at);
CREATE INDEX operator_sessions_key ON operator_sessions (key_id);

-- The console searches payments by card (BIN + last 4, fingerprint) across merchants.
CREATE INDEX payments_card_bin_last4 ON payments (card_bin, card_last4, id);
CREATE INDEX payments_card_fingerprint ON payments (card_fingerprint, id);
-- A payment's page lists its ledger entries by source (the payment, its refunds, disputes).
CREATE INDEX ledger_transfers_source ON ledger_transfers (source) WHERE source IS NOT NULL;
-- ... and the deliveries of its events to every endpoint.
CREATE INDEX webhook_delivery_attempts_event ON webhook_delivery_attempts (event_id);
"""
    )


def downgrade() -> None:
    op.execute(
        """
DROP INDEX webhook_delivery_attempts_event;
DROP INDEX ledger_transfers_source;
DROP INDEX payments_card_fingerprint;
DROP INDEX payments_card_bin_last4;
DROP TABLE operator_sessions;
DROP TABLE operator_totp;
"""
    )
