"""The authorization hot path (issue 19).

- `rate_limit_shares`: each API process's count of requests per key in the current window
  (decision 0911). UNLOGGED: written every `rate_limit_sync_s` by a background task, never by a
  request, and worth nothing after a crash (a new window starts within a second), so it costs no
  WAL and no fsync. One row per (key, process): a process only ever updates its own rows, so no
  two processes wait on one row lock. `rate_limit_counters` (one row per key, upserted by every
  request) is no longer written, but stays until a later migration: during a rolling deploy
  (decision 0806) the processes of the previous release still write it.

Revision ID: 0016
Revises: 0018
"""

from alembic import op

revision = "0016"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
CREATE UNLOGGED TABLE rate_limit_shares (
    key_id text NOT NULL,
    process text NOT NULL,
    window_start bigint NOT NULL,
    count integer NOT NULL CHECK (count >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key_id, process)
);
"""
    )


def downgrade() -> None:
    op.execute(
        """
DROP TABLE rate_limit_shares;
"""
    )
