-- table-relids: the OIDs of the configured tables, passed to each journal trigger as its argument
-- (a partition's change is journaled under its root, the configured table).
--
-- Run by: setup and run in capture.mode trigger, in inspectJournal() (src/sources/journal/setup.ts).
-- Parameters:
--   $1  text[]  the tables' schemas
--   $2  text[]  the tables' names, in the same order as $1
-- Returns: one row per configured table that exists.
--   schema  name  its schema
--   name    name  its name
--   relid   int   its OID

SELECT n.nspname AS schema, c.relname AS name, c.oid::int AS relid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))
