"""Vault schema (issue 3): wrapped DEKs, card tokens, bank accounts, rotations.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
-- One row per merchant and DEK version. Only the wrapped key is stored; `wrapped_key` is NULL
-- once the DEK is destroyed (re-encrypted away, or crypto-shredded).
CREATE TABLE vault_deks (
    merchant_id  text NOT NULL REFERENCES merchants (id),
    version      integer NOT NULL CHECK (version >= 1),
    status       text NOT NULL CHECK (status IN ('active', 'retired', 'destroyed')),
    provider     text NOT NULL,
    kek_id       text,
    wrapped_key  bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    rewrapped_at timestamptz,
    destroyed_at timestamptz,
    PRIMARY KEY (merchant_id, version),
    CHECK ((status = 'destroyed') = (wrapped_key IS NULL)),
    CHECK ((wrapped_key IS NULL) = (kek_id IS NULL))
);
CREATE UNIQUE INDEX vault_deks_one_active ON vault_deks (merchant_id) WHERE status = 'active';
CREATE INDEX vault_deks_kek ON vault_deks (kek_id) WHERE wrapped_key IS NOT NULL;

-- Card tokens. brand/bin/last4/expiry are display data (PCI allows BIN + last 4); the PAN and
-- holder name exist only inside `ciphertext` (AES-256-GCM, AAD = merchant, kind, id, version).
CREATE TABLE card_tokens (
    id          text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants (id),
    brand       text NOT NULL,
    bin         text NOT NULL CHECK (length(bin) IN (6, 8)),
    last4       char(4) NOT NULL,
    exp_month   smallint NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
    exp_year    smallint NOT NULL,
    fingerprint text NOT NULL,
    dek_version integer NOT NULL,
    nonce       bytea NOT NULL CHECK (length(nonce) = 12),
    ciphertext  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (merchant_id, dek_version) REFERENCES vault_deks (merchant_id, version)
);
CREATE INDEX card_tokens_merchant_version ON card_tokens (merchant_id, dek_version, id);
CREATE INDEX card_tokens_fingerprint ON card_tokens (merchant_id, fingerprint);

-- The payout destination: public parts in clear, account/routing numbers or IBAN encrypted.
CREATE TABLE merchant_bank_accounts (
    merchant_id    text PRIMARY KEY REFERENCES merchants (id),
    id             text NOT NULL UNIQUE,
    country        char(2) NOT NULL,
    currency       text NOT NULL,
    account_holder text NOT NULL,
    scheme         text NOT NULL CHECK (scheme IN ('us_ach', 'iban')),
    bic            text,
    display        jsonb NOT NULL,
    dek_version    integer NOT NULL,
    nonce          bytea NOT NULL CHECK (length(nonce) = 12),
    ciphertext     bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (merchant_id, dek_version) REFERENCES vault_deks (merchant_id, version)
);

-- Key rotations in progress or done: an interrupted one is found here and resumed.
CREATE TABLE vault_rotations (
    id          text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('kek', 'dek')),
    merchant_id text REFERENCES merchants (id),
    target      text NOT NULL,
    status      text NOT NULL CHECK (status IN ('running', 'done')),
    done_count  bigint NOT NULL DEFAULT 0,
    actor       text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CHECK ((kind = 'dek') = (merchant_id IS NOT NULL))
);
CREATE UNIQUE INDEX vault_rotations_one_running
    ON vault_rotations (kind, coalesce(merchant_id, '')) WHERE status = 'running';
"""
    )


def downgrade() -> None:
    op.execute("DROP TABLE vault_rotations, merchant_bank_accounts, card_tokens, vault_deks")
