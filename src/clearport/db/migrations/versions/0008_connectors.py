"""Connectors (issue 11): registered connectors, the station sequence, and reversals as payment
attempts.

- `connectors`: what operators register (`POST /v1/connectors`). Settings are shown as stored;
  credentials live only sealed by the vault for the platform (`vault_secrets`,
  `credentials_id`), with their masked display. `version` grows with every change, so each
  process rebuilds what changed.
- `connector_stations`: one value per process, so identifiers a connector makes up (ISO 8583
  terminal ids and RRNs) never collide between processes.
- `payment_attempts`: operation `reverse` (cancel what another attempt, `reverses`, may have
  done at the processor); `tries` and `retry_at` pace the janitor's retries of an attempt it
  could not settle yet.

Revision ID: 0008
Revises: 0010
"""

from alembic import op

revision = "0008"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE connectors (
    id             text PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    type           text NOT NULL,
    settings       jsonb NOT NULL,
    secret_display jsonb NOT NULL DEFAULT '{}',
    credentials_id text REFERENCES vault_secrets (id),
    enabled        boolean NOT NULL DEFAULT true,
    version        integer NOT NULL CHECK (version >= 1),
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE SEQUENCE connector_stations;

ALTER TABLE payment_attempts DROP CONSTRAINT payment_attempts_operation_check;
ALTER TABLE payment_attempts ADD CONSTRAINT payment_attempts_operation_check
    CHECK (operation IN ('authorize', 'capture', 'void', 'refund', 'expire', 'reverse'));
ALTER TABLE payment_attempts
    ADD COLUMN reverses text,
    ADD COLUMN tries integer NOT NULL DEFAULT 0,
    ADD COLUMN retry_at timestamptz,
    ADD CONSTRAINT payment_attempts_reverses
        CHECK ((operation = 'reverse') = (reverses IS NOT NULL));
"""
    )


def downgrade() -> None:
    op.execute(
        """
DELETE FROM payment_attempts WHERE operation = 'reverse';
ALTER TABLE payment_attempts
    DROP CONSTRAINT payment_attempts_reverses,
    DROP COLUMN retry_at,
    DROP COLUMN tries,
    DROP COLUMN reverses;
ALTER TABLE payment_attempts DROP CONSTRAINT payment_attempts_operation_check;
ALTER TABLE payment_attempts ADD CONSTRAINT payment_attempts_operation_check
    CHECK (operation IN ('authorize', 'capture', 'void', 'refund', 'expire'));
DROP SEQUENCE connector_stations;
DROP TABLE connectors;
"""
    )
