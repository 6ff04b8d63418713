-- create-slot: a logical replication slot with the pgoutput plugin.
--
-- Run by: setup (and run, which applies the same plan), a step of planSetup()
-- (src/sources/logical/setup.ts); `setup --dry-run` prints it with $1 inlined.
-- Parameters:
--   $1  text  the slot's name (capture.slot)
-- Returns: one row.
--   lsn  text  where the slot begins (X/X)

SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput');
