"""Hot platform accounts sharded (decision 0913): `ledger_accounts.shard`, one account per
(owner, kind, currency, shard), and `ledger_post` v3 posting a platform account to the
transaction's shard (taken in turn from `ledger_shard_turn`, modulo `clearport.ledger_shards`).
Merchant accounts keep one row (shard 0).

Downgrade folds nothing: it refuses while any shard other than 0 exists (transfers are
append-only and name their shard's row), and otherwise restores version 2 and the old key.

Revision ID: 0019
Revises: 0016
"""

from alembic import op

from clearport.db.migrate import stored_sql

revision = "0019"
down_revision = "0016"
branch_labels = None
depends_on = None


def _ledger_post(version: str) -> str:
    """The `ledger_post` definition of a stored version, as CREATE OR REPLACE."""
    text = stored_sql(version)
    start = text.index("-- Post one linked group in one call.")
    return text[start:].replace(
        "CREATE FUNCTION ledger_post(", "CREATE OR REPLACE FUNCTION ledger_post(", 1
    )


_GUARD = r"""
CREATE OR REPLACE FUNCTION ledger_accounts_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ledger accounts are never deleted'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.owner, NEW.kind, NEW.currency, NEW.debit_normal, NEW.debits_must_not_exceed_credits,
        NEW.credits_must_not_exceed_debits, NEW.id{shard_new})
       IS DISTINCT FROM (OLD.owner, OLD.kind, OLD.currency, OLD.debit_normal,
        OLD.debits_must_not_exceed_credits, OLD.credits_must_not_exceed_debits,
        OLD.id{shard_old}) THEN
        RAISE EXCEPTION 'ledger account identity and flags are immutable'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
"""


def upgrade() -> None:
    op.execute(
        """
ALTER TABLE ledger_accounts ADD COLUMN shard smallint NOT NULL DEFAULT 0 CHECK (shard >= 0);
-- Only platform accounts are sharded: a merchant's accounts carry balance limits that a
-- CHECK on one row enforces.
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_shards_platform_only
    CHECK (shard = 0 OR owner = 'platform');
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_sharded_accounts_have_no_limits
    CHECK (shard = 0 OR NOT (debits_must_not_exceed_credits OR credits_must_not_exceed_debits));
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_owner_kind_currency_shard_key
    UNIQUE (owner, kind, currency, shard);
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_owner_kind_currency_key;
-- Whose turn: each transaction posting to a platform account takes the next shard.
CREATE SEQUENCE ledger_shard_turn CYCLE MAXVALUE 1000000000;
"""
    )
    op.execute(_GUARD.format(shard_new=", NEW.shard", shard_old=", OLD.shard"))
    op.execute(_ledger_post("ledger_post.v3"))


def downgrade() -> None:
    op.execute(
        """
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM ledger_accounts WHERE shard <> 0) THEN
        RAISE EXCEPTION 'ledger accounts are sharded: migration 0019 cannot be undone';
    END IF;
END $$;
"""
    )
    op.execute(_ledger_post("ledger_post.v2"))
    op.execute(_GUARD.format(shard_new="", shard_old=""))
    op.execute(
        """
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_owner_kind_currency_key
    UNIQUE (owner, kind, currency);
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_owner_kind_currency_shard_key;
ALTER TABLE ledger_accounts DROP COLUMN shard;
DROP SEQUENCE ledger_shard_turn;
"""
    )
