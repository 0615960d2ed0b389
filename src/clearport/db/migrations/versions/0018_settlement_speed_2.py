"""ledger_post v2 (a resolved hold looked up by its id); settlement claims' keys in byte order.

Version 1 joined each batch's inserted transfers to the whole `ledger_transfers` table to find
the holds they resolve; for a batch of thousands of plain posts (a settlement partition's legs)
the planner hashed the table, a scan that grows with the ledger (decision 0903). Version 2
reads a hold's amount with a primary-key lookup, only for the transfers that resolve one.

`settlement_claims.source_id` is compared in byte order (COLLATE "C"): a night's staging inserts
millions of keys into its primary key, and a libc collation (C.UTF-8 included) compares each
pair with strcoll; ids are ASCII, so equality and uniqueness are unchanged (decision 0905).

Revision ID: 0018
Revises: 0017
"""

from alembic import op

from clearport.db.migrate import stored_sql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _ledger_post(version: str) -> str:
    """The `ledger_post` definition of a stored version, as CREATE OR REPLACE (its helper
    functions are version 1's and stay)."""
    text = stored_sql(version)
    start = text.index("-- Post one linked group in one call.")
    return text[start:].replace(
        "CREATE FUNCTION ledger_post(", "CREATE OR REPLACE FUNCTION ledger_post(", 1
    )


def upgrade() -> None:
    op.execute(_ledger_post("ledger_post.v2"))
    op.execute('ALTER TABLE settlement_claims ALTER COLUMN source_id TYPE text COLLATE "C"')


def downgrade() -> None:
    op.execute('ALTER TABLE settlement_claims ALTER COLUMN source_id TYPE text COLLATE "default"')
    op.execute(_ledger_post("ledger_post.v1"))
