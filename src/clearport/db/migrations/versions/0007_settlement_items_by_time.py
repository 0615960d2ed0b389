"""Settlement items are listed newest first by (created_at, source_id): the index that serves
it replaces the one by (settlement_id, source_id).

An item's id is its source's (pay_…, rfd_…), so id order is not time order and keyset pages
must walk (created_at, source_id) within a settlement. Without an index in that order, every
page of a settlement with N items reads and sorts all N. Replacing rather than adding keeps two
indexes per item at insert time (decision 0406: items are the settlement's hottest write); what
the old index served still works from the new one's leading `settlement_id` (the end-of-run
invariants join and group by it; the partition report's ORDER BY settlement_id, source_id sorts
within each settlement).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
DROP INDEX settlement_items_settlement;
CREATE INDEX settlement_items_settlement_created
    ON settlement_items (settlement_id, created_at, source_id);
"""
    )


def downgrade() -> None:
    op.execute(
        """
DROP INDEX settlement_items_settlement_created;
CREATE INDEX settlement_items_settlement ON settlement_items (settlement_id, source_id);
"""
    )
