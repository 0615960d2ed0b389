"""Failed authentications per client address, for the lockout (PCI DSS 8.3.4,
docs/decisions/0015).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
-- One row per address (an IPv6 /64) that failed to authenticate. Logged, unlike the rate-limit
-- counters: a lockout is a security control and must survive a restart or a failover.
CREATE TABLE auth_failures (
    subject      text PRIMARY KEY,
    -- The failures still inside the window, oldest first: never more than the limit.
    failed_at    timestamptz[] NOT NULL,
    -- The end of the latest lockout; failures before it no longer count.
    locked_until timestamptz,
    -- After this the row says nothing (no failure in the window, no lockout): it may go.
    forget_after timestamptz NOT NULL
);
CREATE INDEX auth_failures_forget_after ON auth_failures (forget_after);
"""
    )


def downgrade() -> None:
    op.execute("DROP TABLE auth_failures;")
