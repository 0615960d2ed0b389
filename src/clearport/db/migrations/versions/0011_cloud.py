"""Several machines: signed checkpoints in the database, copy progress for object storage and the
DynamoDB mirror, payout files stored after their commit, the KMS-wrapped fingerprint key shared
by every machine.

- `chain_checkpoints`: a signed head per chain position (append-only, like the chains), written
  by the sealer instead of a file on one machine's disk (decision 0802).
- `chain_copies`: how far each copy of a chain has got (`dynamodb:txlog`, the checkpoints in
  object storage), with a lease so one worker at a time copies (decision 0801).
- `payout_files.stored_at`: a file is recorded in one transaction and put into object storage
  after it; NULL until it is there (decision 0800). Files written before are stored already.
- `vault_wrapped_keys`: key material wrapped by the key provider (the KMS-wrapped fingerprint key),
  one row per name, so that every machine unwraps the same key (decision 0804).

Revision ID: 0011
Revises: 0007
"""

from alembic import op

revision = "0011"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
CREATE TABLE chain_checkpoints (
    chain       text NOT NULL CHECK (chain IN ('txlog', 'audit')),
    seq         bigint NOT NULL CHECK (seq > 0),
    head        bytea NOT NULL CHECK (length(head) = 32),
    algorithm   text NOT NULL,
    key_id      text NOT NULL,
    signature   bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, seq)
);
CREATE TRIGGER chain_checkpoints_append_only BEFORE UPDATE OR DELETE ON chain_checkpoints
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER chain_checkpoints_no_truncate BEFORE TRUNCATE ON chain_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

CREATE TABLE chain_copies (
    target       text PRIMARY KEY,
    through      bigint NOT NULL DEFAULT 0 CHECK (through >= 0),
    lease_owner  text,
    lease_until  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE payout_files ADD COLUMN stored_at timestamptz;
UPDATE payout_files SET stored_at = created_at;
CREATE INDEX payout_files_unstored ON payout_files (business_date) WHERE stored_at IS NULL;

CREATE TABLE vault_wrapped_keys (
    name        text PRIMARY KEY,
    provider    text NOT NULL,
    kek_id      text NOT NULL,
    wrapped     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
"""
    )


def downgrade() -> None:
    op.execute(
        """
DROP TABLE vault_wrapped_keys;
DROP INDEX payout_files_unstored;
ALTER TABLE payout_files DROP COLUMN stored_at;
DROP TABLE chain_copies;
DROP TABLE chain_checkpoints;
"""
    )
