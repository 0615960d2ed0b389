"""Settlement schema (issue 6): runs and their partitions, settlements, settled items (each
source at most once, by primary key), reserve holds, payouts and payout files.

Revision ID: 0005
Revises: 0004
"""

from alembic import op
from procrastinate.schema import SchemaManager

from clearport.db.migrate import stored_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        r"""
-- One run per business date: a second request for the same date joins the first.
CREATE TABLE settlement_runs (
    id            text PRIMARY KEY,
    business_date date NOT NULL UNIQUE,
    cutoff_at     timestamptz NOT NULL,
    lookback_from timestamptz NOT NULL,
    partitions    integer NOT NULL CHECK (partitions BETWEEN 1 AND 4096),
    status        text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    error         text,
    stats         jsonb NOT NULL DEFAULT '{}',
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL,
    completed_at  timestamptz
);

-- A partition (merchants hashed into buckets) is settled in one transaction and marked done in
-- that same transaction: a crash leaves it 'pending' and a re-run redoes it from scratch.
CREATE TABLE settlement_partitions (
    run_id      text NOT NULL REFERENCES settlement_runs (id),
    partition   integer NOT NULL,
    status      text NOT NULL CHECK (status IN ('pending', 'done')),
    items       bigint NOT NULL DEFAULT 0,
    settlements integer NOT NULL DEFAULT 0,
    done_at     timestamptz,
    PRIMARY KEY (run_id, partition)
);

-- The run's eligible sources, staged in one pass when the run starts: the partitions read their
-- slice from here, and the end-of-run invariants compare items with exactly this set.
CREATE TABLE settlement_sources (
    run_id      text NOT NULL REFERENCES settlement_runs (id),
    partition   integer NOT NULL,
    source_id   text NOT NULL,
    transfer_id text NOT NULL,
    type        text NOT NULL,
    merchant_id text NOT NULL,
    currency    text NOT NULL,
    amount      bigint NOT NULL CHECK (amount > 0),
    created_at  timestamptz NOT NULL,
    payment_id  text,
    brand       text,
    reference   text
);
CREATE INDEX settlement_sources_partition ON settlement_sources (run_id, partition);
"""
    )
    op.execute(stored_sql("stl_round_half_even.v1"))
    op.execute(
        r"""
CREATE TABLE settlements (
    id               text PRIMARY KEY,
    run_id           text NOT NULL REFERENCES settlement_runs (id),
    partition        integer NOT NULL,
    business_date    date NOT NULL,
    merchant_id      text NOT NULL REFERENCES merchants (id),
    currency         text NOT NULL,
    count            bigint NOT NULL DEFAULT 0,
    gross            bigint NOT NULL DEFAULT 0,
    refunds          bigint NOT NULL DEFAULT 0,
    fees             bigint NOT NULL DEFAULT 0,
    interchange      bigint NOT NULL DEFAULT 0,
    scheme_fees      bigint NOT NULL DEFAULT 0,
    markup           bigint NOT NULL DEFAULT 0,
    rounding         bigint NOT NULL DEFAULT 0,
    reserve_held     bigint NOT NULL DEFAULT 0,
    reserve_released bigint NOT NULL DEFAULT 0,
    net              bigint NOT NULL DEFAULT 0,
    carried_in       bigint NOT NULL DEFAULT 0 CHECK (carried_in <= 0),
    carried_out      bigint NOT NULL DEFAULT 0 CHECK (carried_out <= 0),
    payout           bigint NOT NULL DEFAULT 0 CHECK (payout >= 0),
    flagged_items    bigint NOT NULL DEFAULT 0,
    report           jsonb,
    created_at       timestamptz NOT NULL,
    UNIQUE (business_date, merchant_id, currency),
    CHECK (gross - refunds - fees - reserve_held + reserve_released = net),
    CHECK (net + carried_in = payout + carried_out),
    CHECK (payout = 0 OR carried_out = 0)
);
CREATE INDEX settlements_merchant ON settlements (merchant_id, id);
CREATE INDEX settlements_run ON settlements (run_id, partition, id);

-- Exactly once: the primary key is the source (pay_ for a capture, rfd_ for a refund), so no
-- item can ever be in two settlements, whatever runs concurrently.
CREATE TABLE settlement_items (
    source_id     text PRIMARY KEY,
    -- No foreign key to settlements: checking it costs ~6 us per item at 10 M a night; the
    -- end-of-run invariants join every item to its settlement instead.
    settlement_id text NOT NULL,
    transfer_id   text NOT NULL,
    merchant_id   text NOT NULL,
    payment_id    text NOT NULL,
    reference     text,
    type          text NOT NULL CHECK (type IN ('capture', 'refund')),
    brand         text,
    currency      text NOT NULL,
    gross         bigint NOT NULL,
    interchange   bigint NOT NULL,
    scheme_fee    bigint NOT NULL,
    markup        bigint NOT NULL,
    commission    bigint NOT NULL,
    net           bigint NOT NULL,
    flags         text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    CHECK (commission = interchange + scheme_fee + markup),
    CHECK (gross - commission = net),
    CHECK ((type = 'capture') = (gross > 0))
);
CREATE INDEX settlement_items_settlement ON settlement_items (settlement_id, source_id);

CREATE TABLE reserve_holds (
    settlement_id text PRIMARY KEY REFERENCES settlements (id),
    merchant_id   text NOT NULL,
    currency      text NOT NULL,
    amount        bigint NOT NULL CHECK (amount > 0),
    release_on    date NOT NULL,
    released_by   text REFERENCES settlements (id)
);
CREATE INDEX reserve_holds_due ON reserve_holds (merchant_id, currency, release_on)
    WHERE released_by IS NULL;

CREATE TABLE payout_files (
    id            text PRIMARY KEY,
    business_date date NOT NULL,
    currency      text NOT NULL,
    format        text NOT NULL CHECK (format IN ('nacha', 'pain001', 'csv')),
    object_key    text NOT NULL,
    uri           text NOT NULL,
    sha256        text NOT NULL,
    count         integer NOT NULL CHECK (count > 0),
    total         bigint NOT NULL CHECK (total > 0),
    created_at    timestamptz NOT NULL,
    UNIQUE (business_date, currency)
);

CREATE TABLE payouts (
    id            text PRIMARY KEY,
    merchant_id   text NOT NULL REFERENCES merchants (id),
    settlement_id text NOT NULL UNIQUE REFERENCES settlements (id),
    amount        bigint NOT NULL CHECK (amount > 0),
    currency      text NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'in_transit', 'paid', 'failed')),
    arrival_date  date NOT NULL,
    payout_file_id text REFERENCES payout_files (id),
    flag          text,
    failure_code  text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CHECK ((status = 'pending') = (payout_file_id IS NULL))
);
CREATE INDEX payouts_merchant ON payouts (merchant_id, id);
CREATE INDEX payouts_due ON payouts (currency, arrival_date) WHERE status = 'pending';
"""
    )
    # The job queue that spreads a run's partitions over workers (procrastinate's own schema,
    # pinned with the locked procrastinate version; see docs/decisions/0404).
    op.execute(SchemaManager.get_schema())


def downgrade() -> None:
    op.execute(
        """
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT tablename FROM pg_tables
              WHERE schemaname = 'public' AND tablename LIKE 'procrastinate%' LOOP
        EXECUTE format('DROP TABLE %I CASCADE', r.tablename);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
              JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'public' AND p.proname LIKE 'procrastinate%' LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', r.sig);
    END LOOP;
    FOR r IN SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = 'public' AND typname LIKE 'procrastinate%' AND typtype = 'e' LOOP
        EXECUTE format('DROP TYPE %I CASCADE', r.typname);
    END LOOP;
END $$;
DROP TABLE payouts, payout_files, reserve_holds, settlement_items, settlements,
    settlement_sources, settlement_partitions, settlement_runs;
DROP FUNCTION stl_round_half_even(numeric);
"""
    )
