-- stl_run_tables, version 1 (migration 0015): the tables a settlement run creates and drops.
-- A change is a new file loaded by a new migration; this one never changes.

-- The business date's partition of settlement_items ([d, d + 1)), created empty and without
-- indexes: the run bulk-inserts its items, then stl_index_items builds the indexes once.
-- Idempotent, and safe from two workers at once (the second waits for the first's commit, then
-- finds the table). Creating a partition locks settlement_items briefly: call it in a short
-- transaction of its own, never in the one that stages a night's sources.
CREATE FUNCTION stl_items_partition(d date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    name text := 'settlement_items_' || to_char(d, 'YYYYMMDD');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('settlement_items'), hashtext(name));
    IF to_regclass(name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF settlement_items FOR VALUES FROM (%L) TO (%L)',
            name, d, d + 1);
    END IF;
    RETURN name;
END $$;

-- The date's item indexes, built after its items are in (one sort instead of 10 M inserts
-- into a B-tree), then fresh statistics for the queries that follow. Idempotent.
CREATE FUNCTION stl_index_items(d date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    name text := stl_items_partition(d);
BEGIN
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (settlement_id, created_at, source_id)',
                   name || '_settlement_created', name);
    EXECUTE format('ANALYZE %I', name);
END $$;

-- A run's staging: UNLOGGED (a crash empties it; the run restages from its claims), one leaf
-- per run partition, so a partition reads its own rows and nothing else, with no index.
CREATE FUNCTION stl_stage_tables(run_id text, partitions integer) RETURNS void
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

-- A completed run's staging is dropped whole (no DELETE of millions of rows).
CREATE FUNCTION stl_drop_stage(run_id text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %I', 'settlement_sources_' || lower(run_id));
END $$;
