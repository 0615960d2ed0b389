"""Routing control and risk (issue 15): BIN data, routing and risk rule sets, and what a payment
records of them.

- `bin_ranges`: the BIN table (`clearport bins import FILE`). `bin_from`/`bin_to` as imported
  (equal lengths, 6 to 8 digits); `low`/`high` the same range over 8-digit BINs, so ranges of
  different lengths compare. Where ranges overlap, the narrowest wins (decision 0511).
- `card_tokens` and `payments` record the card's funding, category and issuer country from the
  BIN table at tokenization (NULL: the BIN is not in the table).
- `routing_rule_sets` / `risk_rule_sets`: versioned, `draft` -> `active` -> `inactive`; at most
  one active of each kind (a partial unique index). Versions come from a sequence per kind;
  `body` is the set as the API takes it (`rules`, and routing's `default`).
- `settlement_sources` carry the card type and issuer country, so interchange++ prices by the
  card's real funding type and region (decision 0513).
- `payments.risk`: the risk decision (rules fired, mode); NULL when no risk rule set was active.
- `payments_velocity`: velocity rules count a card's recent payments (decision 0520).

Revision ID: 0012
Revises: 0013
"""

from alembic import op

revision = "0012"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE bin_ranges (
    low            bigint NOT NULL CHECK (low BETWEEN 0 AND 99999999),
    high           bigint NOT NULL CHECK (high BETWEEN low AND 99999999),
    bin_from       text NOT NULL,
    bin_to         text NOT NULL,
    brand          text NOT NULL,
    funding        text NOT NULL CHECK (funding IN ('credit', 'debit', 'prepaid')),
    category       text NOT NULL CHECK (category IN ('consumer', 'commercial')),
    issuer_country text NOT NULL CHECK (issuer_country ~ '^[A-Z]{2}$'),
    PRIMARY KEY (low, high)
);

ALTER TABLE card_tokens
    ADD COLUMN funding text,
    ADD COLUMN category text,
    ADD COLUMN issuer_country text;

ALTER TABLE payments
    ADD COLUMN card_funding text,
    ADD COLUMN card_category text,
    ADD COLUMN card_issuer_country text,
    ADD COLUMN risk jsonb;

-- Settlement prices interchange++ by the card's type and issuer region (decision 0513).
ALTER TABLE settlement_sources ADD COLUMN card_type text, ADD COLUMN issuer_country text;

CREATE INDEX payments_velocity ON payments (merchant_id, card_fingerprint, created_at);
CREATE INDEX payments_merchant_created ON payments (merchant_id, created_at);
CREATE INDEX payments_created ON payments (created_at);

CREATE SEQUENCE routing_rule_set_versions;
CREATE TABLE routing_rule_sets (
    id             text PRIMARY KEY,
    version        integer NOT NULL UNIQUE,
    status         text NOT NULL CHECK (status IN ('draft', 'active', 'inactive')),
    body           jsonb NOT NULL,
    created_at     timestamptz NOT NULL,
    activated_at   timestamptz,
    deactivated_at timestamptz
);
CREATE UNIQUE INDEX routing_rule_sets_one_active ON routing_rule_sets ((true))
    WHERE status = 'active';

CREATE SEQUENCE risk_rule_set_versions;
CREATE TABLE risk_rule_sets (
    id             text PRIMARY KEY,
    version        integer NOT NULL UNIQUE,
    status         text NOT NULL CHECK (status IN ('draft', 'active', 'inactive')),
    body           jsonb NOT NULL,
    created_at     timestamptz NOT NULL,
    activated_at   timestamptz,
    deactivated_at timestamptz
);
CREATE UNIQUE INDEX risk_rule_sets_one_active ON risk_rule_sets ((true))
    WHERE status = 'active';
"""
    )


def downgrade() -> None:
    op.execute(
        """
DROP TABLE risk_rule_sets;
DROP SEQUENCE risk_rule_set_versions;
DROP TABLE routing_rule_sets;
DROP SEQUENCE routing_rule_set_versions;
DROP INDEX payments_created;
DROP INDEX payments_merchant_created;
DROP INDEX payments_velocity;
ALTER TABLE settlement_sources DROP COLUMN issuer_country, DROP COLUMN card_type;
ALTER TABLE payments
    DROP COLUMN risk,
    DROP COLUMN card_issuer_country,
    DROP COLUMN card_category,
    DROP COLUMN card_funding;
ALTER TABLE card_tokens
    DROP COLUMN issuer_country,
    DROP COLUMN category,
    DROP COLUMN funding;
DROP TABLE bin_ranges;
"""
    )
