-- stl_stage_tables, version 2 (migration 0021): as version 1 (stl_run_tables.v1), and the
-- leaves are left alone by autovacuum. They are written once by the staging, read by their
-- partition, analyzed by the run itself and dropped when the run completes: an insert-driven
-- autovacuum of each leaf (vacuum and analyze of a night's millions of rows, setting every
-- page's hint bits and so writing it again) only competed with the partitions for the disk
-- and the cores (decision 0914). A change is a new file loaded by a new migration; this one
-- never changes.
CREATE OR REPLACE FUNCTION stl_stage_tables(run_id text, partitions integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    parent text := 'settlement_sources_' || lower(run_id);
BEGIN
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF settlement_sources FOR VALUES IN (%L) '
        'PARTITION BY LIST (partition)', parent, run_id);
    FOR p IN 0 .. partitions - 1 LOOP
        EXECUTE format('CREATE UNLOGGED TABLE %I PARTITION OF %I FOR VALUES IN (%s) '
                       'WITH (autovacuum_enabled = false)',
                       parent || '_' || p, parent, p);
    END LOOP;
END $$;
