"""ledger_post v2: a resolved hold is looked up by its id, not by hashing every transfer.

Version 1 joined each batch's inserted transfers to the whole `ledger_transfers` table to find
the holds they resolve; for a batch of thousands of plain posts (a settlement partition's legs)
the planner hashed the table, a scan that grows with the ledger (decision 0903). Version 2
reads a hold's amount with a primary-key lookup, only for the transfers that resolve one.

Revision ID: 0018
Revises: 0012
"""

from alembic import op

from clearport.db.migrate import stored_sql

revision = "0018"
down_revision = "0012"
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


def downgrade() -> None:
    op.execute(_ledger_post("ledger_post.v1"))
