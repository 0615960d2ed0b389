"""A settlement run stages its sources in shares, several at once (decision 0914).

The run row is committed first, with `staged_at` NULL and `stage_shares` shares to do; each
share (the run's window cut at fixed times, `from_at` to `to_at`) is claimed and staged in a
transaction of its own, on its own connection, and records what it staged per partition in
`settlement_share_counts` (logged: the staged rows are UNLOGGED) and when the server it staged
on started (`server_started_at`: a crash of PostgreSQL empties UNLOGGED tables, and restarts
it). Once every share is done, one transaction sums the counts into `settlement_partitions` and
sets `staged_at`: only then can a partition be settled. Runs that exist were staged whole.

`stl_stage_tables` v2: a run's staging leaves are created with autovacuum off (the run
analyzes them itself and drops them when it completes).

Revision ID: 0021
Revises: 0020
"""

from alembic import op

from clearport.db.migrate import stored_sql

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
ALTER TABLE settlement_runs ADD COLUMN stage_shares integer NOT NULL DEFAULT 1
        CHECK (stage_shares >= 1),
    ADD COLUMN staged_at timestamptz;
UPDATE settlement_runs SET staged_at = created_at;

CREATE TABLE settlement_stage_shares (
    run_id            text NOT NULL REFERENCES settlement_runs (id),
    share             integer NOT NULL,
    from_at           timestamptz NOT NULL,  -- the sources created in [from_at, to_at)
    to_at             timestamptz NOT NULL,
    done_at           timestamptz,
    server_started_at timestamptz,
    PRIMARY KEY (run_id, share)
);

-- Per share and partition, what the share staged: summed into settlement_partitions once
-- every share is in. No foreign key: written only with its share's row.
CREATE TABLE settlement_share_counts (
    run_id       text NOT NULL,
    share        integer NOT NULL,
    partition    integer NOT NULL,
    staged       bigint NOT NULL,
    staged_gross bigint NOT NULL,
    PRIMARY KEY (run_id, share, partition)
);
"""
    )
    op.execute(stored_sql("stl_stage_tables.v2"))


def downgrade() -> None:
    # stl_stage_tables as stl_run_tables.v1 defined it.
    op.execute(
        """
CREATE OR REPLACE FUNCTION stl_stage_tables(run_id text, partitions integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    parent text := 'settlement_sources_' || lower(run_id);
BEGIN
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF settlement_sources FOR VALUES IN (%L) '
        'PARTITION BY LIST (partition)', parent, run_id);
    FOR p IN 0 .. partitions - 1 LOOP
        EXECUTE format('CREATE UNLOGGED TABLE %I PARTITION OF %I FOR VALUES IN (%s)',
                       parent || '_' || p, parent, p);
    END LOOP;
END $$;
"""
    )
    op.execute(
        """
DROP TABLE settlement_share_counts;
DROP TABLE settlement_stage_shares;
ALTER TABLE settlement_runs DROP COLUMN staged_at, DROP COLUMN stage_shares;
"""
    )
