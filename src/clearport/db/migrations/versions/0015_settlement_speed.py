"""Settlement at the speed of COPY (issue 18, decision 0900).

- `settlement_claims`: the exactly-once guard, global and unpartitioned. A run claims every
  source it stages (primary key: a source is claimed by one run, ever), in the statement that
  stages them; the run's partitions then settle each claimed source once.
- `settlement_items` is partitioned by business date (RANGE, one partition per date, created by
  the run; its indexes are built after its items are in). Its primary key on `source_id` goes:
  the claims are the guard.
- `settlement_sources` is partitioned by run (and each run's table by run partition), UNLOGGED:
  a crash empties it and the run restages its pending partitions from its claims.
- `settlement_partitions.staged`/`staged_gross`: what each partition staged, kept durably for the
  end-of-run invariants (the staged rows themselves may be gone).

Existing items move to one partition per business date with its index; staged rows of runs still
running move to their run's new staging tables.

Revision ID: 0015
Revises: 0008
"""

from alembic import op

from clearport.db.migrate import stored_sql

revision = "0015"
down_revision = "0008"
branch_labels = None
depends_on = None

_ITEM_COLUMNS = """source_id, settlement_id, transfer_id, merchant_id, payment_id, reference, type,
    brand, currency, gross, interchange, scheme_fee, markup, commission, net, flags, created_at"""
_SOURCE_COLUMNS = """run_id, partition, source_id, transfer_id, type, merchant_id, currency, amount,
    fee, created_at, payment_id, brand, reference"""


def upgrade() -> None:
    op.execute(stored_sql("stl_run_tables.v1"))
    op.execute(
        f"""
-- No foreign key to settlement_runs: checking it costs microseconds per source at 10 M a night;
-- claims are written only by the statement that stages a run.
CREATE TABLE settlement_claims (
    source_id text PRIMARY KEY,
    run_id    text NOT NULL,
    partition integer NOT NULL
);

ALTER TABLE settlement_partitions ADD COLUMN staged bigint NOT NULL DEFAULT 0,
    ADD COLUMN staged_gross bigint NOT NULL DEFAULT 0;

ALTER TABLE settlement_items RENAME TO settlement_items_0015;
ALTER INDEX settlement_items_pkey RENAME TO settlement_items_0015_pkey;
ALTER INDEX settlement_items_settlement_created RENAME TO settlement_items_0015_created;
CREATE TABLE settlement_items (
    source_id     text NOT NULL,
    -- No foreign key to settlements: the end-of-run invariants join every item instead.
    settlement_id text NOT NULL,
    transfer_id   text NOT NULL,
    merchant_id   text NOT NULL,
    payment_id    text,
    reference     text,
    type          text NOT NULL CHECK (type IN ('capture', 'refund', 'dispute',
                      'dispute_reversal', 'adjustment')),
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
    business_date date NOT NULL,
    CHECK (commission = interchange + scheme_fee + markup),
    CHECK (gross - commission = net),
    CHECK (CASE WHEN type IN ('capture', 'dispute_reversal') THEN gross > 0
                WHEN type IN ('refund', 'dispute') THEN gross < 0
                ELSE gross <> 0 END),
    CHECK (payment_id IS NOT NULL OR type = 'adjustment')
) PARTITION BY RANGE (business_date);

DO $$
DECLARE d date;
BEGIN
    FOR d IN SELECT DISTINCT business_date FROM settlements ORDER BY 1 LOOP
        PERFORM stl_items_partition(d);
    END LOOP;
END $$;
INSERT INTO settlement_items ({_ITEM_COLUMNS}, business_date)
SELECT {", ".join("i." + c.strip() for c in _ITEM_COLUMNS.split(","))}, s.business_date
  FROM settlement_items_0015 i JOIN settlements s ON s.id = i.settlement_id;
INSERT INTO settlement_claims (source_id, run_id, partition)
SELECT i.source_id, s.run_id, s.partition
  FROM settlement_items_0015 i JOIN settlements s ON s.id = i.settlement_id;
DO $$
DECLARE d date;
BEGIN
    FOR d IN SELECT DISTINCT business_date FROM settlements ORDER BY 1 LOOP
        PERFORM stl_index_items(d);
    END LOOP;
END $$;
DROP TABLE settlement_items_0015;

UPDATE settlement_partitions p SET staged = x.n, staged_gross = x.gross
  FROM (SELECT run_id, partition, count(*) AS n,
               sum(CASE WHEN type IN ('capture', 'dispute_reversal', 'adjustment') THEN amount
                        ELSE -amount END) AS gross
          FROM settlement_sources GROUP BY run_id, partition) x
 WHERE x.run_id = p.run_id AND x.partition = p.partition;
ALTER TABLE settlement_sources RENAME TO settlement_sources_0015;
CREATE TABLE settlement_sources (
    run_id      text NOT NULL,
    partition   integer NOT NULL,
    source_id   text NOT NULL,
    transfer_id text NOT NULL,
    type        text NOT NULL,
    merchant_id text NOT NULL,
    currency    text NOT NULL,
    amount      bigint NOT NULL CHECK (amount > 0 OR (type = 'adjustment' AND amount <> 0)),
    fee         bigint NOT NULL DEFAULT 0 CHECK (fee >= 0),
    created_at  timestamptz NOT NULL,
    payment_id  text,
    brand       text,
    reference   text
) PARTITION BY LIST (run_id);
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT id, partitions FROM settlement_runs WHERE status = 'running' LOOP
        PERFORM stl_stage_tables(r.id, r.partitions);
    END LOOP;
END $$;
INSERT INTO settlement_sources ({_SOURCE_COLUMNS})
SELECT {_SOURCE_COLUMNS} FROM settlement_sources_0015
 WHERE run_id IN (SELECT id FROM settlement_runs WHERE status = 'running');
DROP TABLE settlement_sources_0015;
-- The next staging anti-joins the claims: plan it with their real size, not an empty table's.
ANALYZE settlement_claims;
"""
    )


def downgrade() -> None:
    op.execute(
        f"""
CREATE TABLE settlement_sources_0005 (
    run_id      text NOT NULL REFERENCES settlement_runs (id),
    partition   integer NOT NULL,
    source_id   text NOT NULL,
    transfer_id text NOT NULL,
    type        text NOT NULL,
    merchant_id text NOT NULL,
    currency    text NOT NULL,
    amount      bigint NOT NULL CONSTRAINT settlement_sources_amount_check
                    CHECK (amount > 0 OR (type = 'adjustment' AND amount <> 0)),
    created_at  timestamptz NOT NULL,
    payment_id  text,
    brand       text,
    reference   text,
    fee         bigint NOT NULL DEFAULT 0 CHECK (fee >= 0)
);
INSERT INTO settlement_sources_0005 ({_SOURCE_COLUMNS})
SELECT {_SOURCE_COLUMNS} FROM settlement_sources;
DROP TABLE settlement_sources;
ALTER TABLE settlement_sources_0005 RENAME TO settlement_sources;
CREATE INDEX settlement_sources_partition ON settlement_sources (run_id, partition);

CREATE TABLE settlement_items_0005 (
    source_id     text PRIMARY KEY,
    settlement_id text NOT NULL,
    transfer_id   text NOT NULL,
    merchant_id   text NOT NULL,
    payment_id    text,
    reference     text,
    type          text NOT NULL CONSTRAINT settlement_items_type_check CHECK (type IN
                      ('capture', 'refund', 'dispute', 'dispute_reversal', 'adjustment')),
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
    CONSTRAINT settlement_items_gross_sign CHECK (CASE
        WHEN type IN ('capture', 'dispute_reversal') THEN gross > 0
        WHEN type IN ('refund', 'dispute') THEN gross < 0
        ELSE gross <> 0 END),
    CONSTRAINT settlement_items_payment_named CHECK (payment_id IS NOT NULL OR type = 'adjustment')
);
INSERT INTO settlement_items_0005 ({_ITEM_COLUMNS}) SELECT {_ITEM_COLUMNS} FROM settlement_items;
DROP TABLE settlement_items;
ALTER TABLE settlement_items_0005 RENAME TO settlement_items;
ALTER INDEX settlement_items_0005_pkey RENAME TO settlement_items_pkey;
CREATE INDEX settlement_items_settlement_created
    ON settlement_items (settlement_id, created_at, source_id);

ALTER TABLE settlement_partitions DROP COLUMN staged, DROP COLUMN staged_gross;
DROP TABLE settlement_claims;
DROP FUNCTION stl_drop_stage(text);
DROP FUNCTION stl_stage_tables(text, integer);
DROP FUNCTION stl_index_items(date);
DROP FUNCTION stl_items_partition(date);
"""
    )
